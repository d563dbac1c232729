//! Mail in (mail-parser) and out (templates, lettre).
