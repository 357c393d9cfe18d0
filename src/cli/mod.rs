//! One module per subcommand, plus what they share.

pub mod check;
pub mod classify;
pub mod corpus;
pub mod embed;
pub mod eval;
pub mod eval_originality;
pub mod eval_passages;
pub mod heads;
pub mod index;
pub mod input;
pub mod lsp;
pub mod patches;
pub mod query;
pub mod store;
pub mod train;
