//! Helpers shared by the core's integration tests.

// Each test binary uses a part of these.
#![allow(dead_code)]

pub mod presence_cases;
pub mod reference;
