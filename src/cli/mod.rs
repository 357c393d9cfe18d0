//! One module per subcommand, plus what they share.

pub mod input;
pub mod patches;
