//! The one place that talks to sqlx: a pool of either database, a transaction on it, the values
//! a statement binds, and a statement builder.
//!
//! The store's SQL is portable (`$N` placeholders, `ON CONFLICT … DO UPDATE`, `IS DISTINCT
//! FROM`), so every statement is written once and run on whichever database the pool is. A
//! [`Value`] encodes itself as the value of the same Rust type would on that database (text,
//! integers, reals, dates, times, JSON), which keeps the columns' types and formats what they
//! were. Rows are read with `sqlx::FromRow` (tuples or the row structs of each area).

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::value::RawValue;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgPool, PgRow, PgTypeInfo};
use sqlx::sqlite::{SqliteArgumentsBuffer, SqlitePool, SqliteRow, SqliteTypeInfo};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Encode, FromRow, Postgres, Sqlite, Type};

use crate::StoreError;

/// Rows per multi-row INSERT: well under SQLite's 32,766 bound variables.
pub(crate) const CHUNK: usize = 500;

/// Up to this many ids, a lookup names them (`IN (...)` in chunks); beyond, it reads the
/// tenant's rows once.
pub(crate) const FEW: usize = 2_000;

/// A connection pool.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// An open transaction. Dropped without [`Tx::commit`], it rolls back.
pub(crate) enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// A row type both databases can read into (tuples and `#[derive(sqlx::FromRow)]` structs).
pub(crate) trait Row: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

impl Pool {
    /// A plain transaction (no tenant set: see the store's `begin*` methods).
    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Pool::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Pool::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// A transaction that writes: on SQLite it takes the write lock up front (`BEGIN
    /// IMMEDIATE`), so concurrent writers queue on the busy timeout instead of failing half-way.
    pub(crate) async fn begin_write(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Pool::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Pool::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
            Pool::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
        }
        Ok(())
    }
}

impl Tx {
    /// Runs a statement; returns the number of rows it changed.
    pub(crate) async fn execute(&mut self, sql: Sql<'_>) -> Result<u64, StoreError> {
        let Sql { text, values } = sql;
        Ok(match self {
            Tx::Sqlite(tx) => {
                let q = values.into_iter().fold(sqlx::query(AssertSqlSafe(text)), |q, v| q.bind(v));
                q.execute(&mut **tx).await?.rows_affected()
            }
            Tx::Postgres(tx) => {
                let q = values.into_iter().fold(sqlx::query(AssertSqlSafe(text)), |q, v| q.bind(v));
                q.execute(&mut **tx).await?.rows_affected()
            }
        })
    }

    /// Every row a query returns.
    pub(crate) async fn all<R: Row>(&mut self, sql: Sql<'_>) -> Result<Vec<R>, StoreError> {
        let Sql { text, values } = sql;
        Ok(match self {
            Tx::Sqlite(tx) => {
                let q = values.into_iter().fold(sqlx::query_as(AssertSqlSafe(text)), |q, v| q.bind(v));
                q.fetch_all(&mut **tx).await?
            }
            Tx::Postgres(tx) => {
                let q = values.into_iter().fold(sqlx::query_as(AssertSqlSafe(text)), |q, v| q.bind(v));
                q.fetch_all(&mut **tx).await?
            }
        })
    }

    /// The first row a query returns, if any.
    pub(crate) async fn optional<R: Row>(&mut self, sql: Sql<'_>) -> Result<Option<R>, StoreError> {
        let Sql { text, values } = sql;
        Ok(match self {
            Tx::Sqlite(tx) => {
                let q = values.into_iter().fold(sqlx::query_as(AssertSqlSafe(text)), |q, v| q.bind(v));
                q.fetch_optional(&mut **tx).await?
            }
            Tx::Postgres(tx) => {
                let q = values.into_iter().fold(sqlx::query_as(AssertSqlSafe(text)), |q, v| q.bind(v));
                q.fetch_optional(&mut **tx).await?
            }
        })
    }

    /// The one row a query returns (an error if none).
    pub(crate) async fn one<R: Row>(&mut self, sql: Sql<'_>) -> Result<R, StoreError> {
        self.optional(sql).await?.ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// Appended to a query that claims rows (alerts, jobs): on PostgreSQL concurrent claimers
    /// skip each other's rows; SQLite has one writer at a time.
    pub(crate) fn skip_locked(&self) -> &'static str {
        match self {
            Tx::Sqlite(_) => "",
            Tx::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// A statement and the values it binds. Written whole with `$N` placeholders
/// ([`Sql::new`] then [`Sql::bind`] in order), or built from constant fragments and bound
/// values ([`Sql::push`], [`Sql::push_bind`], [`Sql::push_list`], [`Sql::push_rows`]), which
/// number their placeholders themselves. Only constant SQL is ever pushed: every value is bound.
#[derive(Debug, Clone)]
pub(crate) struct Sql<'a> {
    text: String,
    values: Vec<Value<'a>>,
}

impl<'a> Sql<'a> {
    pub(crate) fn new(text: &str) -> Self {
        Sql { text: text.to_owned(), values: Vec::new() }
    }

    /// Binds the next `$N` of a statement written whole.
    pub(crate) fn bind(mut self, value: impl Into<Value<'a>>) -> Self {
        self.values.push(value.into());
        self
    }

    /// Appends constant SQL.
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `value`.
    pub(crate) fn push_bind(&mut self, value: impl Into<Value<'a>>) -> &mut Self {
        self.values.push(value.into());
        let n = self.values.len();
        self.text.push('$');
        self.text.push_str(&n.to_string());
        self
    }

    /// Appends `(…, …)`: a placeholder for each value.
    pub(crate) fn push_list<V: Into<Value<'a>>>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Self {
        self.push("(");
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push_bind(v);
        }
        self.push(")")
    }

    /// Appends `VALUES (…), (…)`: one row of placeholders per item, its values from `row`.
    pub(crate) fn push_rows<T>(&mut self, items: &'a [T], row: impl Fn(&'a T) -> Vec<Value<'a>>) -> &mut Self {
        self.push("VALUES ");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push_list(row(item));
        }
        self
    }
}

/// A value bound to a statement, typed as the Rust value it came from.
#[derive(Debug, Clone)]
pub(crate) enum Value<'a> {
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
    Real(Option<f64>),
    Date(Option<NaiveDate>),
    Time(Option<DateTime<Utc>>),
    /// A JSON document, serialised once.
    Json(Option<Box<RawValue>>),
}

impl Value<'_> {
    /// `value` as JSON (a value that cannot be serialised is a bug: it panics, as
    /// `sqlx::types::Json` would fail the statement).
    pub(crate) fn json<T: serde::Serialize + ?Sized>(value: &T) -> Value<'static> {
        Value::Json(Some(serde_json::value::to_raw_value(value).expect("stored JSON serialises")))
    }

    /// [`Value::json`] of an optional value.
    pub(crate) fn json_opt<T: serde::Serialize>(value: Option<&T>) -> Value<'static> {
        value.map_or(Value::Json(None), Value::json)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(Some(Cow::Borrowed(v)))
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Value::Text(Some(Cow::Borrowed(v)))
    }
}

impl From<String> for Value<'_> {
    fn from(v: String) -> Self {
        Value::Text(Some(Cow::Owned(v)))
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Value::Text(v.map(Cow::Borrowed))
    }
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}

impl From<f64> for Value<'_> {
    fn from(v: f64) -> Self {
        Value::Real(Some(v))
    }
}

impl From<Option<f64>> for Value<'_> {
    fn from(v: Option<f64>) -> Self {
        Value::Real(v)
    }
}

impl From<NaiveDate> for Value<'_> {
    fn from(v: NaiveDate) -> Self {
        Value::Date(Some(v))
    }
}

impl From<Option<NaiveDate>> for Value<'_> {
    fn from(v: Option<NaiveDate>) -> Self {
        Value::Date(v)
    }
}

impl From<DateTime<Utc>> for Value<'_> {
    fn from(v: DateTime<Utc>) -> Self {
        Value::Time(Some(v))
    }
}

impl From<Option<DateTime<Utc>>> for Value<'_> {
    fn from(v: Option<DateTime<Utc>>) -> Self {
        Value::Time(v)
    }
}

impl Type<Sqlite> for Value<'_> {
    fn type_info() -> SqliteTypeInfo {
        <str as Type<Sqlite>>::type_info()
    }

    fn compatible(_: &SqliteTypeInfo) -> bool {
        true
    }
}

impl Encode<'_, Sqlite> for Value<'_> {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        match self {
            Value::Text(v) => Encode::<Sqlite>::encode_by_ref(&v.as_deref(), buf),
            Value::Int(v) => Encode::<Sqlite>::encode_by_ref(v, buf),
            Value::Real(v) => Encode::<Sqlite>::encode_by_ref(v, buf),
            Value::Date(v) => Encode::<Sqlite>::encode_by_ref(v, buf),
            Value::Time(v) => Encode::<Sqlite>::encode_by_ref(v, buf),
            Value::Json(v) => Encode::<Sqlite>::encode_by_ref(&v.as_deref().map(Json), buf),
        }
    }

    fn produces(&self) -> Option<SqliteTypeInfo> {
        Some(match self {
            Value::Text(_) => <str as Type<Sqlite>>::type_info(),
            Value::Int(_) => <i64 as Type<Sqlite>>::type_info(),
            Value::Real(_) => <f64 as Type<Sqlite>>::type_info(),
            Value::Date(_) => <NaiveDate as Type<Sqlite>>::type_info(),
            Value::Time(_) => <DateTime<Utc> as Type<Sqlite>>::type_info(),
            Value::Json(_) => <Json<&RawValue> as Type<Sqlite>>::type_info(),
        })
    }
}

impl Type<Postgres> for Value<'_> {
    fn type_info() -> PgTypeInfo {
        <str as Type<Postgres>>::type_info()
    }

    fn compatible(_: &PgTypeInfo) -> bool {
        true
    }
}

impl Encode<'_, Postgres> for Value<'_> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        match self {
            Value::Text(v) => Encode::<Postgres>::encode_by_ref(&v.as_deref(), buf),
            Value::Int(v) => Encode::<Postgres>::encode_by_ref(v, buf),
            Value::Real(v) => Encode::<Postgres>::encode_by_ref(v, buf),
            Value::Date(v) => Encode::<Postgres>::encode_by_ref(v, buf),
            Value::Time(v) => Encode::<Postgres>::encode_by_ref(v, buf),
            Value::Json(v) => Encode::<Postgres>::encode_by_ref(&v.as_deref().map(Json), buf),
        }
    }

    /// The type of each value, as the Rust type would give it: PostgreSQL checks parameters'
    /// types against the columns.
    fn produces(&self) -> Option<PgTypeInfo> {
        Some(match self {
            Value::Text(_) => <str as Type<Postgres>>::type_info(),
            Value::Int(_) => <i64 as Type<Postgres>>::type_info(),
            Value::Real(_) => <f64 as Type<Postgres>>::type_info(),
            Value::Date(_) => <NaiveDate as Type<Postgres>>::type_info(),
            Value::Time(_) => <DateTime<Utc> as Type<Postgres>>::type_info(),
            Value::Json(_) => <Json<&RawValue> as Type<Postgres>>::type_info(),
        })
    }
}
