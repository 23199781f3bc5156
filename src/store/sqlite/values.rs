//! Many rows written with multi-row `VALUES` and bound parameters, in a few fixed chunk sizes.
//!
//! Rows passed as one JSON array (`json_each`) cost SQLite a render and a re-parse of the whole
//! row object for every column a statement reads from it, and an event's data is the larger part
//! of its row, escaped. Bound parameters cost nothing of the kind. A statement per row would cross
//! sqlx's worker once per row; chunks of a few fixed sizes keep the crossings few and the
//! prepared statements few too (each size of each statement is one cached statement).

/// Most rows in one statement.
pub(super) const MAX_ROWS: usize = 64;

/// `rows` cut into slices of [`MAX_ROWS`], then of the largest power of two that fits what is
/// left: every slice has one of seven sizes, in the rows' order.
pub(super) fn chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let n = if rows.len() >= MAX_ROWS {
            MAX_ROWS
        } else {
            1 << rows.len().ilog2()
        };
        let (head, tail) = rows.split_at(n);
        rows = tail;
        Some(head)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_every_row_in_order_in_seven_sizes_at_most() {
        let sizes = [1, 2, 4, 8, 16, 32, 64];
        for n in [0usize, 1, 2, 3, 7, 63, 64, 65, 100, 127, 128, 129, 2_000] {
            let rows: Vec<usize> = (0..n).collect();
            let cut: Vec<&[usize]> = chunks(&rows).collect();
            assert_eq!(cut.concat(), rows, "{n} rows");
            assert!(
                cut.iter().all(|c| sizes.contains(&c.len())),
                "{n} rows: {cut:?}"
            );
            // Whole chunks first, then strictly smaller ones: no more statements than needed.
            let lens: Vec<usize> = cut.iter().map(|c| c.len()).collect();
            let tail: Vec<usize> = lens.iter().copied().filter(|l| *l < MAX_ROWS).collect();
            assert!(tail.windows(2).all(|w| w[0] > w[1]), "{n} rows: {lens:?}");
            assert_eq!(lens.len() - tail.len(), n / MAX_ROWS, "{n} rows");
        }
    }
}
