//! Many rows written with multi-row `VALUES` and bound parameters, in a few fixed statement
//! shapes.
//!
//! Rows passed as one JSON array (`json_each`) cost SQLite a render and a re-parse of the whole
//! row object for every column a statement reads from it, and an event's data is the larger part
//! of its row, escaped. Bound parameters cost nothing of the kind. A statement per row is a step
//! of the VM per row, and a statement per power of two of the rows would put a group of 15 rows
//! in four statements. So rows go in statements of at most [`MAX_ROWS`], each with its row count
//! rounded up to a power of two: the extra rows are padding, their parameters all NULL, which
//! every statement that reads them filters out (a NULL id matches nothing). A group of up to
//! [`MAX_ROWS`] rows is one statement, and each statement has one of seven shapes, each prepared
//! once and cached.

use rusqlite::ToSql;

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

/// The `VALUES` list of a statement of `slots` rows: `row` (a parenthesised row of placeholders
/// and literals) that many times.
pub(super) fn rows_sql(row: &str, slots: usize) -> String {
    let mut sql = String::with_capacity((row.len() + 2) * slots);
    for i in 0..slots {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(row);
    }
    sql
}

/// Binds a statement's parameters in order, row after row.
pub(super) struct Binder<'s, 'c> {
    stmt: &'s mut rusqlite::CachedStatement<'c>,
    bound: usize,
}

impl<'s, 'c> Binder<'s, 'c> {
    pub fn new(stmt: &'s mut rusqlite::CachedStatement<'c>) -> Self {
        Self { stmt, bound: 0 }
    }

    /// Binds the next parameter.
    pub fn bind(&mut self, value: impl ToSql) -> rusqlite::Result<()> {
        self.bound += 1;
        self.stmt.raw_bind_parameter(self.bound, value)
    }

    /// Binds the next parameters, in order: a row.
    pub fn row(&mut self, values: &[&dyn ToSql]) -> rusqlite::Result<()> {
        values.iter().try_for_each(|v| self.bind(v))
    }

    /// A padding row: its `params` parameters NULL.
    pub fn nulls(&mut self, params: usize) -> rusqlite::Result<()> {
        for _ in 0..params {
            self.bind(rusqlite::types::Null)?;
        }
        Ok(())
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
