//! Wires adapters and supervises the tasks.
