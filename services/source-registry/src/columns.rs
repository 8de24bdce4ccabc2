//! Typed reads of `sources` columns, and the query type a Source's settings
//! bind to: shared by the setting groups in [`crate::source`] (each reads
//! and binds its own columns) and the store, which puts them together.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, Row as _};

/// A query the settings are bound to, in the order its SQL lists them.
pub(crate) type Query<'q> = sqlx::query::Query<'q, Any, AnyArguments>;

/// Reads a BIGINT column into an unsigned type, refusing out-of-range values.
pub(crate) fn unsigned_column<T: TryFrom<i64>>(
    row: &AnyRow,
    column: &str,
) -> Result<T, sqlx::Error> {
    let value: i64 = row.try_get(column)?;
    T::try_from(value).map_err(|_| decode_error(column, format!("{value} is out of range")))
}

/// Reads a 0/1 BIGINT column as a bool.
pub(crate) fn bool_column(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    match row.try_get::<i64, _>(column)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(decode_error(column, format!("{other} is not 0 or 1"))),
    }
}

/// The error for a column whose stored value no setting can hold.
pub(crate) fn decode_error(column: &str, problem: String) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: problem.into(),
    }
}
