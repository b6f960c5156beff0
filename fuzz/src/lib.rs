//! The fuzz targets' code: [`targets`] holds one function per parser, [`support`] their set-up.
//! Both files are also compiled into ig-image's `fuzz_corpus` test, which replays the seeds.

pub mod support;
pub mod targets;
