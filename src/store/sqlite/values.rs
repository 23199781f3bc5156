//! Many rows written with multi-row `VALUES` and bound parameters, in a few fixed statement
//! shapes.
//!
//! Rows passed as one JSON array (`json_each`) cost SQLite a render and a re-parse of the whole
//! row object for every column a statement reads from it, and an event's data is the larger part
//! of its row, escaped. Bound parameters cost nothing of the kind. A statement per row would cross
//! sqlx's worker once per row, and so would a statement per power of two of the rows (a group of
//! 15 rows in four statements). So rows go in statements of at most [`MAX_ROWS`], each with its
//! row count rounded up to a power of two: the extra rows are padding, all NULL, which every
//! statement that reads them filters out (a NULL id matches nothing). A group of up to
//! [`MAX_ROWS`] rows is one statement, and each statement has one of seven shapes, each prepared
//! once and cached by sqlx.

use sqlx::Sqlite;
use sqlx::query_builder::Separated;

/// Most rows in one statement.
pub(super) const MAX_ROWS: usize = 64;

/// Some rows of one statement, and its row slots (a power of two, at least the rows).
pub(super) struct Chunk<'a, T> {
    pub rows: &'a [T],
    pub slots: usize,
}

impl<'a, T> Chunk<'a, T> {
    /// The rows, then `None` for each padding row.
    pub fn padded(&self) -> impl Iterator<Item = Option<&'a T>> + use<'a, T> {
        let rows = self.rows;
        rows.iter()
            .map(Some)
            .chain(std::iter::repeat_n(None, self.slots - rows.len()))
    }
}

/// `rows` cut into statements of [`MAX_ROWS`] rows and a last one with the rest, in order.
pub(super) fn chunks<T>(rows: &[T]) -> impl Iterator<Item = Chunk<'_, T>> {
    rows.chunks(MAX_ROWS).map(|rows| Chunk {
        rows,
        slots: rows.len().next_power_of_two(),
    })
}

/// A padding row: `columns` NULLs.
pub(super) fn nulls(row: &mut Separated<'_, Sqlite, &'static str>, columns: usize) {
    for _ in 0..columns {
        row.push_bind(None::<i64>);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_every_row_in_order_in_the_fewest_statements_of_seven_shapes() {
        let shapes = [1, 2, 4, 8, 16, 32, 64];
        for n in [
            0usize, 1, 2, 3, 7, 15, 63, 64, 65, 100, 127, 128, 129, 2_000,
        ] {
            let rows: Vec<usize> = (0..n).collect();
            let cut: Vec<Chunk<usize>> = chunks(&rows).collect();
            let again: Vec<usize> = cut.iter().flat_map(|c| c.rows.iter().copied()).collect();
            assert_eq!(again, rows, "{n} rows");
            assert_eq!(cut.len(), n.div_ceil(MAX_ROWS), "{n} rows");
            for c in &cut {
                assert!(shapes.contains(&c.slots), "{n} rows: {} slots", c.slots);
                assert!(
                    c.rows.len() <= c.slots && c.slots < 2 * c.rows.len(),
                    "{n} rows"
                );
                let padded: Vec<Option<&usize>> = c.padded().collect();
                assert_eq!(padded.len(), c.slots);
                assert!(padded[c.rows.len()..].iter().all(Option::is_none));
            }
        }
    }
}
