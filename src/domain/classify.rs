//! Classification of a parsed mail (automatic, bounce, spam, threading).
