//! Long lists answered one screen at a time: names in [`natural`] order,
//! [`paging`] by query parameters, and the [`machines`] list with its
//! phase filter. The JSON endpoints, the registry API and the history all
//! read their query parameters here.

pub mod machines;
pub mod natural;
pub mod paging;
