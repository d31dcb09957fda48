//! Natural order for names: `machine-3` before `machine-105`.
//!
//! Runs of ASCII digits compare by the number they spell, everything else
//! byte by byte. Names that only differ in leading zeros (`a01`, `a1`) fall
//! back to plain byte order, so the order is total and agrees with `==`:
//! a page of a sorted list is the same page every time it is asked for.

use std::cmp::Ordering;

/// Compares `a` and `b` in natural order.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < x.len() && j < y.len() {
        if x[i].is_ascii_digit() && y[j].is_ascii_digit() {
            let (run_x, next_i) = digit_run(x, i);
            let (run_y, next_j) = digit_run(y, j);
            let order = compare_numbers(run_x, run_y);
            if order != Ordering::Equal {
                return order;
            }
            (i, j) = (next_i, next_j);
        } else {
            match x[i].cmp(&y[j]) {
                Ordering::Equal => (i, j) = (i + 1, j + 1),
                order => return order,
            }
        }
    }
    // One is a prefix of the other (in natural terms), or they differ only
    // in leading zeros.
    (x.len() - i).cmp(&(y.len() - j)).then_with(|| x.cmp(y))
}

/// The digits from `start` and the index after them.
fn digit_run(bytes: &[u8], start: usize) -> (&[u8], usize) {
    let end = bytes[start..]
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map_or(bytes.len(), |n| start + n);
    (&bytes[start..end], end)
}

/// Compares two runs of digits by value, however long they are.
fn compare_numbers(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |run: &[u8]| -> usize { run.iter().take_while(|d| **d == b'0').count() };
    let (a, b) = (&a[strip(a)..], &b[strip(b)..]);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Sorts `items` naturally by the name `name` gives each.
pub fn sort_naturally<T>(items: &mut [T], name: impl Fn(&T) -> &str) {
    items.sort_by(|a, b| natural_cmp(name(a), name(b)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_names_compare_by_value() {
        let mut names = vec![
            "machine-105",
            "machine-3",
            "machine-20",
            "machine-3-lxd-10",
            "machine-3-lxd-2",
            "machine-0",
            "unit-wordpress-10",
            "unit-wordpress-9",
            "application-mysql",
        ];
        sort_naturally(&mut names, |s| s);
        assert_eq!(
            names,
            [
                "application-mysql",
                "machine-0",
                "machine-3",
                "machine-3-lxd-2",
                "machine-3-lxd-10",
                "machine-20",
                "machine-105",
                "unit-wordpress-9",
                "unit-wordpress-10",
            ]
        );
    }

    #[test]
    fn numbers_longer_than_any_integer_type_still_compare() {
        let big = format!("m-{}", "9".repeat(40));
        let bigger = format!("m-1{}", "0".repeat(40));
        assert_eq!(natural_cmp(&big, &bigger), Ordering::Less);
        assert_eq!(
            natural_cmp("m-18446744073709551616", "m-18446744073709551615"),
            Ordering::Greater
        );
    }

    #[test]
    fn leading_zeros_and_prefixes_give_a_total_order() {
        assert_eq!(natural_cmp("a01", "a1"), Ordering::Less);
        assert_eq!(natural_cmp("a1", "a01"), Ordering::Greater);
        assert_eq!(natural_cmp("a1", "a1"), Ordering::Equal);
        assert_eq!(natural_cmp("a", "a1"), Ordering::Less);
        assert_eq!(natural_cmp("", "a"), Ordering::Less);
        assert_eq!(natural_cmp("", ""), Ordering::Equal);
    }

    /// Antisymmetric, equal only when identical, and transitive over a set
    /// of awkward names: what a sort needs to give stable pages.
    #[test]
    fn the_order_is_total_and_consistent() {
        let names = [
            "",
            "0",
            "00",
            "000",
            "1",
            "01",
            "001",
            "10",
            "9",
            "a",
            "a0",
            "a00",
            "a1",
            "a01",
            "a10",
            "a9",
            "a-1",
            "a-01",
            "a1b",
            "a01b",
            "a1c",
            "ab",
            "b",
            "é1",
            "é01",
            "é",
            "m-3",
            "m-3-lxd-1",
            "m-03-lxd-1",
            "m-105",
            " 1",
            "1 ",
        ];
        for a in names {
            for b in names {
                let ab = natural_cmp(a, b);
                assert_eq!(ab, natural_cmp(b, a).reverse(), "{a:?} {b:?}");
                assert_eq!(ab == Ordering::Equal, a == b, "{a:?} {b:?}");
                for c in names {
                    if ab != Ordering::Greater && natural_cmp(b, c) != Ordering::Greater {
                        assert_ne!(natural_cmp(a, c), Ordering::Greater, "{a:?} {b:?} {c:?}");
                    }
                }
            }
        }
    }
}
