//! The dashboard: one page ([`page`]) that polls the JSON endpoints, which
//! answer one screen at a time ([`crate::lists`]).
//!
//! The page draws its charts from `/api/history` with a few hundred lines
//! of its own script: no build step, no script from elsewhere, nothing
//! the page needs from the internet.

/// The dashboard page, its style and script inlined, so that a browser
/// given the token once (`/?token=…`) needs no other authorised fetch than
/// the script's own API calls.
pub fn page() -> String {
    include_str!("index.html")
        .replace("/*STYLE*/", include_str!("dashboard.css"))
        .replace("/*CHARTS*/", include_str!("charts.js"))
        .replace("/*SCRIPT*/", include_str!("dashboard.js"))
}
