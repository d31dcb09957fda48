//! Pages of a long list: `offset`, `limit` and `filter` query parameters,
//! so that a page at 10,000 machines or models sends and draws one screen,
//! not every row.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;

/// The longest `filter` accepted, in bytes.
pub const MAX_FILTER: usize = 256;

/// A query parameter that does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BadParameter {
    /// The parameter, as the query names it.
    pub parameter: &'static str,
    /// What is wrong with it, naming it.
    pub message: String,
}

impl BadParameter {
    /// A problem with `parameter`.
    pub fn new(parameter: &'static str, message: impl Into<String>) -> Self {
        BadParameter {
            parameter,
            message: message.into(),
        }
    }
}

/// Which part of a list to answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageQuery {
    /// Rows to skip, after filtering.
    pub offset: usize,
    /// Rows to answer at most; `None` answers the rest.
    pub limit: Option<usize>,
    /// Keep only rows whose name holds this text (lower case, trimmed);
    /// `None` keeps every row.
    pub filter: Option<String>,
}

impl PageQuery {
    /// Reads `offset`, `limit` and `filter`; other parameters are left for
    /// the caller.
    pub fn parse(query: &HashMap<String, String>) -> Result<Self, BadParameter> {
        let offset = count(query, "offset")?.unwrap_or(0);
        let limit = count(query, "limit")?;
        let filter = match query.get("filter") {
            None => None,
            Some(text) if text.len() > MAX_FILTER => {
                return Err(BadParameter::new(
                    "filter",
                    format!(
                        "parameter `filter`: at most {MAX_FILTER} bytes, got {}",
                        text.len()
                    ),
                ));
            }
            Some(text) => {
                let text = text.trim().to_lowercase();
                (!text.is_empty()).then_some(text)
            }
        };
        Ok(PageQuery {
            offset,
            limit,
            filter,
        })
    }

    /// Whether `name` passes the filter.
    pub fn matches(&self, name: &str) -> bool {
        self.filter
            .as_deref()
            .is_none_or(|filter| name.to_lowercase().contains(filter))
    }

    /// The page of `items` (already sorted) whose names pass the filter.
    pub fn apply<T>(&self, items: Vec<T>, name: impl Fn(&T) -> Cow<'_, str>) -> Page<T> {
        let total = items.len();
        let matching: Vec<T> = match self.filter {
            None => items,
            Some(_) => items
                .into_iter()
                .filter(|i| self.matches(&name(i)))
                .collect(),
        };
        let matched = matching.len();
        let items = matching
            .into_iter()
            .skip(self.offset)
            .take(self.limit.unwrap_or(usize::MAX))
            .collect();
        Page {
            items,
            total,
            matched,
            offset: self.offset,
            limit: self.limit,
        }
    }
}

/// A non-negative integer parameter, if given.
fn count(
    query: &HashMap<String, String>,
    parameter: &'static str,
) -> Result<Option<usize>, BadParameter> {
    let Some(text) = query.get(parameter) else {
        return Ok(None);
    };
    // Digits only: `usize::from_str` would take a leading `+` too.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadParameter::new(
            parameter,
            format!("parameter `{parameter}`: {text:?} is not a non-negative integer"),
        ));
    }
    text.parse().map(Some).map_err(|_| {
        BadParameter::new(
            parameter,
            format!(
                "parameter `{parameter}`: {text} is too large (at most {})",
                usize::MAX
            ),
        )
    })
}

/// One page of a list, and how long the list is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// The rows of the page.
    pub items: Vec<T>,
    /// Rows before filtering.
    pub total: usize,
    /// Rows that passed the filter.
    pub matched: usize,
    /// The `offset` asked for.
    pub offset: usize,
    /// The `limit` asked for, if any.
    pub limit: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_parameters_answer_every_row() {
        let page = PageQuery::parse(&query(&[])).unwrap();
        assert_eq!(page, PageQuery::default());
        let rows = page.apply(vec!["a", "b", "c"], |s| Cow::from(*s));
        assert_eq!(rows.items, ["a", "b", "c"]);
        assert_eq!((rows.total, rows.matched), (3, 3));
    }

    #[test]
    fn offset_and_limit_cut_the_filtered_rows() {
        let names: Vec<String> = (0..120).map(|n| format!("machine-{n}")).collect();
        let page = PageQuery::parse(&query(&[
            ("filter", "  Machine-1 "),
            ("offset", "2"),
            ("limit", "3"),
        ]))
        .unwrap();
        assert_eq!(page.filter.as_deref(), Some("machine-1"));
        let rows = page.apply(names, |s| Cow::from(s.as_str()));
        // machine-1, machine-10..19, machine-100..119 pass: 31 rows.
        assert_eq!(rows.items, ["machine-11", "machine-12", "machine-13"]);
        assert_eq!((rows.total, rows.matched), (120, 31));
        assert_eq!((rows.offset, rows.limit), (2, Some(3)));
    }

    #[test]
    fn past_the_end_is_an_empty_page_and_limit_0_only_counts() {
        let page = PageQuery::parse(&query(&[("offset", "18446744073709551615")])).unwrap();
        let rows = page.apply(vec!["a", "b"], |s| Cow::from(*s));
        assert!(rows.items.is_empty());
        assert_eq!(rows.matched, 2);
        let page = PageQuery::parse(&query(&[("limit", "0")])).unwrap();
        let rows = page.apply(vec!["a", "b"], |s| Cow::from(*s));
        assert!(rows.items.is_empty());
        assert_eq!(rows.total, 2);
    }

    #[test]
    fn a_blank_filter_keeps_every_row() {
        let page = PageQuery::parse(&query(&[("filter", " \t ")])).unwrap();
        assert_eq!(page.filter, None);
    }

    #[test]
    fn bad_values_name_the_parameter() {
        for (parameter, value, message) in [
            (
                "offset",
                "-1",
                "parameter `offset`: \"-1\" is not a non-negative integer",
            ),
            (
                "offset",
                "",
                "parameter `offset`: \"\" is not a non-negative integer",
            ),
            (
                "limit",
                "NaN",
                "parameter `limit`: \"NaN\" is not a non-negative integer",
            ),
            (
                "limit",
                "1e3",
                "parameter `limit`: \"1e3\" is not a non-negative integer",
            ),
            (
                "limit",
                "+5",
                "parameter `limit`: \"+5\" is not a non-negative integer",
            ),
            (
                "limit",
                "2.5",
                "parameter `limit`: \"2.5\" is not a non-negative integer",
            ),
            (
                "limit",
                "inf",
                "parameter `limit`: \"inf\" is not a non-negative integer",
            ),
        ] {
            let error = PageQuery::parse(&query(&[(parameter, value)])).unwrap_err();
            assert_eq!(error.parameter, parameter);
            assert_eq!(error.message, message);
        }
        let huge = "99999999999999999999999";
        let error = PageQuery::parse(&query(&[("limit", huge)])).unwrap_err();
        assert_eq!(error.parameter, "limit");
        assert_eq!(
            error.message,
            format!(
                "parameter `limit`: {huge} is too large (at most {})",
                usize::MAX
            )
        );
        let long = "x".repeat(MAX_FILTER + 1);
        let error = PageQuery::parse(&query(&[("filter", &long)])).unwrap_err();
        assert_eq!(error.parameter, "filter");
        assert_eq!(
            error.message,
            format!(
                "parameter `filter`: at most 256 bytes, got {}",
                MAX_FILTER + 1
            )
        );
    }
}
