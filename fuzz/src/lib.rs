//! The fuzz targets' code: [`targets`] holds one function per parser, [`support`] their set-up.
//! Both files are also compiled into the `fuzz_corpus` test (tests/tests/fuzz_corpus.rs), which replays the seeds.

pub mod support;
pub mod targets;
