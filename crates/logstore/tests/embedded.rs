//! Runs the shared `LogStore` suite against the embedded engine, plus engine-specific crash cases.

use lookout_logstore::{logstore_test_suite, EmbeddedStore, LogStore, StoreConfig};

fn open_embedded(dir: &std::path::Path) -> Box<dyn LogStore> {
    Box::new(EmbeddedStore::open(StoreConfig::new(dir)).unwrap())
}

logstore_test_suite!(open_embedded);
