//! Mail in and out: `parse` turns raw bytes into a [`parse::ParsedMail`] with mail-parser,
//! `templates` renders Handlebars files, `compose` builds our outgoing messages with lettre.

pub mod charts;
pub mod compose;
pub mod html;
pub mod parse;
pub mod reply;
pub mod report;
pub mod templates;
