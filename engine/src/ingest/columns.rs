//! Where a mapped column's cells are: in the export itself or in a joined lookup table, found
//! by exact, qualified (`table.column`) or loose name.

use std::borrow::Cow;

use crate::mapping::normalize_key;

/// A small CSV table held in memory (lookup tables for joins).
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Where a mapped column's value comes from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Cell {
    Main(usize),
    Joined { join: usize, column: usize },
}

pub(super) struct Resolver<'a> {
    pub(super) headers: &'a [String],
    pub(super) joins: &'a [(crate::mapping::Join, Table)],
}

impl Resolver<'_> {
    pub(super) fn find(&self, column: &str) -> Option<Cell> {
        let column = column.trim();
        let exact = |headers: &[String]| headers.iter().position(|h| h == column);
        let loose = |headers: &[String]| {
            let key = normalize_key(column);
            headers.iter().position(|h| normalize_key(h) == key)
        };
        if let Some(i) = exact(self.headers) {
            return Some(Cell::Main(i));
        }
        for (j, (join, table)) in self.joins.iter().enumerate() {
            let qualified = column.strip_prefix(join.table_name()).and_then(|c| c.strip_prefix('.'));
            if let Some(i) = qualified.and_then(|q| table.headers.iter().position(|h| h == q)) {
                return Some(Cell::Joined { join: j, column: i });
            }
            if let Some(i) = exact(&table.headers) {
                return Some(Cell::Joined { join: j, column: i });
            }
        }
        if let Some(i) = loose(self.headers) {
            return Some(Cell::Main(i));
        }
        for (j, (_, table)) in self.joins.iter().enumerate() {
            if let Some(i) = loose(&table.headers) {
                return Some(Cell::Joined { join: j, column: i });
            }
        }
        None
    }

    pub(super) fn available(&self) -> String {
        let mut names: Vec<String> = self.headers.to_vec();
        for (join, table) in self.joins {
            names.extend(table.headers.iter().map(|h| format!("{}.{h}", join.table_name())));
        }
        names.join(", ")
    }
}

pub(super) fn value_of<'c>(
    cell: Cell,
    cells: &'c [Cow<'c, str>],
    joined: &'c [(crate::mapping::Join, Table)],
    rows: &[Option<usize>],
) -> &'c str {
    match cell {
        Cell::Main(i) => cells.get(i).map_or("", |c| c.as_ref()),
        Cell::Joined { join, column } => rows[join]
            .and_then(|r| joined[join].1.rows.get(r))
            .and_then(|row| row.get(column))
            .map_or("", String::as_str),
    }
}
