//! Media files on disk, and a media catalogue for running without the Annotations
//! service.

pub mod folders;
pub mod local_catalog;
mod staging;

pub use folders::FolderMediaStore;
pub use local_catalog::LocalMediaCatalog;
