//! The integration test binary of flumen-wal: behaviour through the public API, crash and
//! corruption tests, fault injection and the model test.

mod basic;
mod corruption;
mod disk;
mod faults;
mod model;
mod util;
