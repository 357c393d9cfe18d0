//! One module per subcommand, plus what they share.

pub mod check;
pub mod classify;
pub mod corpus;
pub mod db;
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

use tunelens_index::vectors::VectorError;
use tunelens_index::{IndexError, QueryError, StoreError};

/// The command line's way out of a library error, in its flags: the libraries word their
/// errors for every user (an editor's too), so the flags are named here.
pub fn hint(e: &anyhow::Error) -> Option<&'static str> {
    e.chain().find_map(|cause| {
        let store = cause.downcast_ref::<StoreError>().or_else(|| {
            match cause.downcast_ref::<QueryError>() {
                Some(QueryError::Store(s)) => Some(s),
                _ => None,
            }
        });
        if let Some(s) = store {
            return match s {
                StoreError::TooNew { .. }
                | StoreError::TooOld { .. }
                | StoreError::Corrupt { .. } => {
                    Some("pass --rebuild to replace the index, or --db PATH to use another")
                }
                StoreError::InUse { .. } => Some("pass --db PATH to use another index database"),
                _ => None,
            };
        }
        let vectors = cause
            .downcast_ref::<VectorError>()
            .or_else(|| match cause.downcast_ref::<QueryError>() {
                Some(QueryError::Vectors(v)) => Some(v),
                _ => None,
            })
            .or_else(|| match cause.downcast_ref::<IndexError>() {
                Some(IndexError::Vectors(v)) => Some(v),
                _ => None,
            });
        match (vectors, cause.downcast_ref::<QueryError>()) {
            (Some(v), _) if v.is_unavailable() => {
                Some("pass --store embedded to search the local index")
            }
            (_, Some(QueryError::Empty { .. })) => Some("run `tunelens index FOLDER` first"),
            (_, Some(QueryError::NotInMilvus { .. })) => {
                Some("run `tunelens index --store milvus`, or `tunelens store migrate --to milvus`")
            }
            _ => None,
        }
    })
}
