//! The names of a multi-metric history query, numbered once each, and
//! the answers laid back out in the order asked.

use std::collections::HashMap;

use tailmon_core::Point;

/// Each distinct name of `metrics` numbered from 0, and the number of each
/// name asked, in order (a name may be asked twice).
pub(crate) fn distinct_names(metrics: &[String]) -> (HashMap<&str, usize>, Vec<usize>) {
    let mut slots: HashMap<&str, usize> = HashMap::with_capacity(metrics.len());
    let of = metrics
        .iter()
        .map(|metric| {
            let next = slots.len();
            *slots.entry(metric.as_str()).or_insert(next)
        })
        .collect();
    (slots, of)
}

/// The answers per distinct name (`distinct[slot]`) laid out as asked
/// (`of`, from [`distinct_names`]): moved out at a name's last ask, cloned
/// before.
pub(crate) fn in_asked_order(mut distinct: Vec<Vec<Point>>, of: &[usize]) -> Vec<Vec<Point>> {
    let mut left = vec![0usize; distinct.len()];
    for &slot in of {
        left[slot] += 1;
    }
    of.iter()
        .map(|&slot| {
            left[slot] -= 1;
            if left[slot] == 0 {
                std::mem::take(&mut distinct[slot])
            } else {
                distinct[slot].clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailmon_core::OffsetDateTime;

    #[test]
    fn a_name_asked_twice_is_answered_twice_in_place() {
        let metrics = ["a", "b", "a"].map(String::from);
        let (slots, of) = distinct_names(&metrics);
        assert_eq!((slots.len(), of.as_slice()), (2, [0, 1, 0].as_slice()));
        let point = |v| Point {
            at: OffsetDateTime::UNIX_EPOCH,
            avg: v,
            min: v,
            max: v,
        };
        let laid = in_asked_order(vec![vec![point(1.0)], vec![point(2.0)]], &of);
        assert_eq!(laid, [vec![point(1.0)], vec![point(2.0)], vec![point(1.0)]]);
    }
}
