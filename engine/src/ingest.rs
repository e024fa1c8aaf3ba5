//! CSV export → validated [`Dataset`] plus a [`QualityReport`].
//!
//! The caller opens files and passes readers; this module never touches the file system. Real
//! exports are messy, so reading is forgiving where meaning is unambiguous (any line ending, a
//! byte-order mark, padded cells, `$1,234.50`, Windows-1252 bytes) and strict where it is not
//! (an unparseable date, an unknown outcome label, a duplicate id). A row with an error is
//! quarantined: it is left out of the dataset, counted, and described by row, column, value and
//! reason. A row with only warnings is kept.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use chrono::NaiveDate;
use serde::Serialize;

use crate::dataset::{CatColumn, CatKind, Dataset, Deal, MISSING, Schema, Vocab};
use crate::domain::{Amount, DealId, Outcome};
use crate::mapping::{BlankOutcome, Mapping, MissingColumns, Source, normalize_key};

/// A small CSV table held in memory (lookup tables for joins).
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("could not read the CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("the CSV has no header row")]
    NoHeader,
    #[error("the mapping names columns that are not in the CSV header: {} (columns: {available})", missing.join("; "))]
    MissingColumns { missing: Vec<String>, available: String },
    #[error("join {table:?}: {reason}")]
    Join { table: String, reason: String },
    #[error("the mapping has {expected} joins but {given} lookup tables were given")]
    JoinCount { expected: usize, given: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The row is quarantined.
    Error,
    /// The row is kept; the value is flagged or treated as blank.
    Warning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    MalformedRow,
    Encoding,
    MissingRequired,
    BadId,
    DuplicateId,
    UnknownOutcome,
    BadDate,
    BadNumber,
    NonPositiveAmount,
    AmountTooLarge,
    ClosedBeforeCreated,
    DateInFuture,
    JoinMiss,
    Outlier,
}

/// One problem with one cell of one row.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// 1-based data row (the header is row 0).
    pub row: u32,
    pub deal_id: Option<String>,
    pub column: String,
    pub value: String,
    pub kind: ProblemKind,
    pub severity: Severity,
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row {}", self.row)?;
        if let Some(id) = &self.deal_id {
            write!(f, " (deal {id})")?;
        }
        write!(f, ", column {:?}, value {:?}: {}", self.column, self.value, self.reason)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnQuality {
    pub field: String,
    pub column: String,
    pub filled: usize,
    pub completeness_pct: f64,
}

/// The data-quality report of seeds 002 §4.1 and 004.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QualityReport {
    pub rows_read: usize,
    pub rows_accepted: usize,
    pub rows_quarantined: usize,
    pub won: usize,
    pub lost: usize,
    pub open: usize,
    /// Share of mapped cells that are filled.
    pub completeness_pct: f64,
    /// Share of rows without an error.
    pub validity_pct: f64,
    /// Share of rows whose id is not a repeat of an earlier row's.
    pub uniqueness_pct: f64,
    pub columns: Vec<ColumnQuality>,
    pub errors_by_kind: BTreeMap<ProblemKind, usize>,
    pub warnings_by_kind: BTreeMap<ProblemKind, usize>,
    /// Every problem found, errors first by row.
    pub problems: Vec<Problem>,
    /// Problems with the file as a whole (skipped columns, encoding).
    pub notices: Vec<String>,
}

impl QualityReport {
    pub fn quarantined_rows(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Error)
    }
}

/// The result of ingesting one export.
#[derive(Debug)]
pub struct Ingested {
    pub dataset: Dataset,
    pub report: QualityReport,
}

/// Reads a whole (small) CSV into memory, for joins.
pub fn read_table<R: Read>(reader: R, source: &Source) -> Result<Table, IngestError> {
    let mut csv = csv_reader(reader, source);
    let headers = read_headers(&mut csv)?;
    let mut rows = Vec::new();
    let mut record = csv::ByteRecord::new();
    while csv.read_byte_record(&mut record)? {
        rows.push(record.iter().map(|cell| decode(cell).0.trim().to_owned()).collect());
    }
    Ok(Table { headers, rows })
}

fn csv_reader<R: Read>(reader: R, source: &Source) -> csv::Reader<R> {
    let delimiter = u8::try_from(source.delimiter).unwrap_or(b',');
    csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).from_reader(reader)
}

fn read_headers<R: Read>(csv: &mut csv::Reader<R>) -> Result<Vec<String>, IngestError> {
    let headers: Vec<String> = csv.byte_headers()?.iter().map(|h| decode(h).0.trim().to_owned()).collect();
    if headers.iter().all(String::is_empty) {
        return Err(IngestError::NoHeader);
    }
    Ok(headers)
}

/// UTF-8, or else Windows-1252/Latin-1 (what spreadsheet exports usually are). The flag says
/// whether the fallback was needed.
fn decode(bytes: &[u8]) -> (Cow<'_, str>, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.into(), false),
        Err(_) => (bytes.iter().map(|&b| b as char).collect::<String>().into(), true),
    }
}

/// Where a mapped column's value comes from.
#[derive(Debug, Clone, Copy)]
enum Cell {
    Main(usize),
    Joined { join: usize, column: usize },
}

struct Resolver<'a> {
    headers: &'a [String],
    joins: &'a [(crate::mapping::Join, Table)],
}

impl Resolver<'_> {
    fn find(&self, column: &str) -> Option<Cell> {
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

    fn available(&self) -> String {
        let mut names: Vec<String> = self.headers.to_vec();
        for (join, table) in self.joins {
            names.extend(table.headers.iter().map(|h| format!("{}.{h}", join.table_name())));
        }
        names.join(", ")
    }
}

/// A mapped input column, resolved to its position.
struct Input {
    field: String,
    column: String,
    cell: Cell,
}

/// One joined lookup table with its index and the source of its key.
struct JoinIndex {
    key_source: Cell,
    index: HashMap<String, usize>,
}

/// The validation context: the date the export was taken ("today" for the caller), against
/// which future dates are errors. It is not the as-of date: replaying history at an earlier date
/// hides later outcomes, it does not make them invalid.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub today: NaiveDate,
}

/// Reads, maps and validates an export. `joins` holds one lookup table per `[[join]]` of the
/// mapping, in order.
pub fn ingest<R: Read>(input: R, mapping: &Mapping, joins: Vec<Table>, ctx: Context) -> Result<Ingested, IngestError> {
    if joins.len() != mapping.joins.len() {
        return Err(IngestError::JoinCount { expected: mapping.joins.len(), given: joins.len() });
    }
    let mut csv = csv_reader(input, &mapping.source);
    let headers = read_headers(&mut csv)?;
    let joined: Vec<(crate::mapping::Join, Table)> = mapping.joins.iter().cloned().zip(joins).collect();
    let mut report = QualityReport::default();

    // Resolve every mapped column once.
    let mut join_indexes = Vec::with_capacity(joined.len());
    for (j, (join, table)) in joined.iter().enumerate() {
        let resolver = Resolver { headers: &headers, joins: &joined[..j] };
        let key_source = resolver.find(&join.on).ok_or_else(|| IngestError::Join {
            table: join.file.clone(),
            reason: format!("key column {:?} is not in the CSV header (columns: {})", join.on, resolver.available()),
        })?;
        let key_col = table.headers.iter().position(|h| h == join.key_column()).ok_or_else(|| IngestError::Join {
            table: join.file.clone(),
            reason: format!(
                "key column {:?} is not in the lookup table (columns: {})",
                join.key_column(),
                table.headers.join(", ")
            ),
        })?;
        let mut index = HashMap::new();
        for (r, row) in table.rows.iter().enumerate() {
            if let Some(key) = row.get(key_col).map(|k| normalize_key(k)).filter(|k| !k.is_empty()) {
                index.entry(key).or_insert(r);
            }
        }
        join_indexes.push(JoinIndex { key_source, index });
    }
    let resolver = Resolver { headers: &headers, joins: &joined };
    // Every missing column is collected, so one error lists them all.
    let missing: std::cell::RefCell<Vec<String>> = std::cell::RefCell::default();
    let note_missing =
        |what: String, column: &str| missing.borrow_mut().push(format!("{what} names column {column:?}"));
    let required = |field: &str, column: &str| -> Option<Input> {
        let cell = resolver.find(column);
        if cell.is_none() {
            note_missing(format!("field `{field}`"), column);
        }
        Some(Input { field: field.to_owned(), column: column.to_owned(), cell: cell? })
    };
    let f = &mapping.fields;
    let id_in = required("id", &f.id);
    let outcome_in = required("outcome", &f.outcome);
    let optional = |field: &str, column: &Option<String>| column.as_ref().and_then(|c| required(field, c));
    let name_in = optional("name", &f.name);
    let owner_in = optional("owner", &f.owner);
    let created_in = optional("created", &f.created);
    let closed_in = optional("closed", &f.closed);
    let stage_in = optional("stage", &f.stage);
    let amount_in = optional("amount", &f.amount);

    // Segment and feature columns may be skipped when the mapping allows it.
    let mut schema = Schema::default();
    let mut cat_inputs: Vec<Input> = Vec::new();
    let mut skip_or_fail = |what: &str, name: &str, column: &str| -> Option<Cell> {
        let cell = resolver.find(column);
        if cell.is_none() {
            if mapping.missing_columns == MissingColumns::Skip {
                report.notices.push(format!("{what} {name:?}: column {column:?} is not in this export; skipped"));
            } else {
                note_missing(format!("{what} `{name}`"), column);
            }
        }
        cell
    };
    let mut add_cat = |schema: &mut Schema, name: &str, column: &str, kind: CatKind, cell: Cell| {
        schema.categorical.push(CatColumn { name: name.to_owned(), kind, vocab: Vocab::for_kind(kind) });
        cat_inputs.push(Input { field: name.to_owned(), column: column.to_owned(), cell });
    };
    for (name, column) in &mapping.segments {
        if let Some(cell) = skip_or_fail("segment", name, column) {
            add_cat(&mut schema, name, column, CatKind::Segment, cell);
        }
    }
    if let Some(owner) = &owner_in {
        add_cat(&mut schema, "owner", &owner.column, CatKind::Owner, owner.cell);
    }
    for column in &mapping.categorical {
        if let Some(cell) = skip_or_fail("categorical feature", column, column) {
            add_cat(&mut schema, column, column, CatKind::Extra, cell);
        }
    }
    let mut num_inputs = Vec::new();
    for column in &mapping.numeric {
        if let Some(cell) = skip_or_fail("numeric feature", column, column) {
            schema.numeric.push(column.clone());
            num_inputs.push(Input { field: column.clone(), column: column.clone(), cell });
        }
    }
    for stage in &mapping.stages.order {
        schema.stages.intern(stage);
    }
    let mut stage_inputs = Vec::new();
    for (stage, column) in &mapping.stages.entered {
        if let Some(cell) = skip_or_fail("stage entry date", stage, column) {
            stage_inputs.push((
                schema.stages.intern(stage) as usize,
                Input { field: format!("entered {stage}"), column: column.clone(), cell },
            ));
        }
    }
    schema.has_created = created_in.is_some();
    schema.has_closed = closed_in.is_some();
    schema.has_amount = amount_in.is_some();
    schema.has_stage_history = !stage_inputs.is_empty();
    let missing = missing.into_inner();
    let (Some(id_in), Some(outcome_in), true) = (id_in, outcome_in, missing.is_empty()) else {
        return Err(IngestError::MissingColumns { missing, available: resolver.available() });
    };
    let n_stage_slots = schema.stages.len();

    // Completeness counters, one per mapped input.
    let mut fill_inputs: Vec<&Input> = [&id_in, &outcome_in].into_iter().collect();
    fill_inputs.extend([&name_in, &created_in, &closed_in, &stage_in, &amount_in].into_iter().flatten());
    fill_inputs.extend(cat_inputs.iter().filter(|i| i.field != "owner"));
    if let Some(owner) = &owner_in {
        fill_inputs.push(owner);
    }
    fill_inputs.extend(num_inputs.iter());
    let mut filled = vec![0usize; fill_inputs.len()];

    let outcome_labels: HashMap<String, Outcome> = [
        (&mapping.outcome.won, Outcome::Won),
        (&mapping.outcome.lost, Outcome::Lost),
        (&mapping.outcome.open, Outcome::Open),
    ]
    .into_iter()
    .flat_map(|(labels, o)| labels.iter().map(move |l| (normalize_key(l), o)))
    .collect();
    let known_labels = || {
        let mut all: Vec<&str> = mapping
            .outcome
            .won
            .iter()
            .chain(&mapping.outcome.lost)
            .chain(&mapping.outcome.open)
            .map(String::as_str)
            .collect();
        all.dedup();
        all.join(", ")
    };

    let dates = DateParser::new(&mapping.source.date_formats);
    // Raw outcome cell → label, so each distinct spelling is normalised once.
    let mut outcome_cache: HashMap<String, Option<Outcome>> = HashMap::new();
    let mut deals: Vec<Deal> = Vec::new();
    let mut first_row: HashMap<DealId, u32> = HashMap::new();
    let mut repeated_ids = 0usize;
    let mut record = csv::ByteRecord::new();
    let mut row: u32 = 0;
    let mut encoding_noted = false;
    let mut joined_rows: Vec<Option<usize>> = vec![None; joined.len()];

    while csv.read_byte_record(&mut record)? {
        row += 1;
        report.rows_read += 1;
        let mut probs = RowProblems { row, list: Vec::new() };

        let mut latin1 = false;
        let cells: Vec<Cow<'_, str>> = record
            .iter()
            .map(|cell| {
                let (text, fallback) = decode(cell);
                latin1 |= fallback;
                match text {
                    Cow::Borrowed(t) => Cow::Borrowed(t.trim()),
                    Cow::Owned(t) => Cow::Owned(t.trim().to_owned()),
                }
            })
            .collect();
        if latin1 && !encoding_noted {
            encoding_noted = true;
            report.notices.push(format!("row {row} is not valid UTF-8; read as Windows-1252 (Latin-1)"));
        }
        if cells.len() != headers.len() {
            probs.add(
                "",
                &cells.join(","),
                ProblemKind::MalformedRow,
                Severity::Error,
                format!("row has {} fields, the header has {}", cells.len(), headers.len()),
            );
            finish_row(&mut report, probs.list, None);
            continue;
        }
        for (j, ji) in join_indexes.iter().enumerate() {
            let key = value_of(ji.key_source, &cells, &joined, &joined_rows);
            joined_rows[j] = ji.index.get(&normalize_key(key)).copied();
            if joined_rows[j].is_none() && !key.is_empty() {
                let (join, _) = &joined[j];
                probs.add(
                    &join.on,
                    key,
                    ProblemKind::JoinMiss,
                    Severity::Warning,
                    format!("no row in {} has {} = {key:?}; its columns are left blank", join.file, join.key_column()),
                );
            }
        }
        let get = |input: &Input| value_of(input.cell, &cells, &joined, &joined_rows);
        for (slot, input) in filled.iter_mut().zip(&fill_inputs) {
            *slot += usize::from(!get(input).is_empty());
        }

        // Identity and outcome.
        let raw_id = get(&id_in);
        let id = match DealId::parse(raw_id) {
            Ok(id) => Some(id),
            Err(e) => {
                let kind = if raw_id.is_empty() { ProblemKind::MissingRequired } else { ProblemKind::BadId };
                probs.add(&id_in.column, raw_id, kind, Severity::Error, e.to_string());
                None
            }
        };
        let raw_outcome = get(&outcome_in);
        let outcome = if raw_outcome.is_empty() && mapping.outcome.blank == BlankOutcome::Open {
            Some(Outcome::Open)
        } else {
            let found = match outcome_cache.get(raw_outcome) {
                Some(&o) => o,
                None => {
                    let o = outcome_labels.get(&normalize_key(raw_outcome)).copied();
                    outcome_cache.insert(raw_outcome.to_owned(), o);
                    o
                }
            };
            if found.is_none() {
                let reason = if raw_outcome.is_empty() {
                    "outcome is blank and the mapping does not treat blank as open".to_owned()
                } else {
                    format!("unknown outcome label; the mapping knows: {}", known_labels())
                };
                let kind =
                    if raw_outcome.is_empty() { ProblemKind::MissingRequired } else { ProblemKind::UnknownOutcome };
                probs.add(&outcome_in.column, raw_outcome, kind, Severity::Error, reason);
            }
            found
        };

        // Dates.
        let mut date = |input: &Option<Input>| -> Option<NaiveDate> {
            let input = input.as_ref()?;
            let raw = get(input);
            if raw.is_empty() {
                return None;
            }
            match dates.parse(raw) {
                Some(d) => Some(d),
                None => {
                    probs.add(
                        &input.column,
                        raw,
                        ProblemKind::BadDate,
                        Severity::Error,
                        format!("not a date in any of the formats {}", mapping.source.date_formats.join(", ")),
                    );
                    None
                }
            }
        };
        let created = date(&created_in);
        let closed = date(&closed_in);
        let closed_outcome = outcome.is_some_and(Outcome::is_closed);
        for (input, value, field) in [(&created_in, created, "created"), (&closed_in, closed, "closed")] {
            let Some(input) = input else { continue };
            let raw = get(input);
            let needed = mapping.requires(field) || closed_outcome;
            if value.is_none() && raw.is_empty() && needed {
                let reason = if closed_outcome && !mapping.requires(field) {
                    format!("a {} deal needs a {field} date", outcome.map_or("", Outcome::as_str))
                } else {
                    format!("required field `{field}` is blank")
                };
                probs.add(&input.column, raw, ProblemKind::MissingRequired, Severity::Error, reason);
            }
        }
        if let (Some(c), Some(z)) = (created, closed)
            && z < c
        {
            let column = closed_in.as_ref().map_or("", |i| i.column.as_str());
            probs.add(
                column,
                &z.to_string(),
                ProblemKind::ClosedBeforeCreated,
                Severity::Error,
                format!("closed {z} is before created {c}"),
            );
        }
        if let (Some(c), Some(input)) = (created, &created_in)
            && c > ctx.today
        {
            probs.add(
                &input.column,
                get(input),
                ProblemKind::DateInFuture,
                Severity::Error,
                format!("created date is after today ({})", ctx.today),
            );
        }
        if let (Some(z), Some(input), true) = (closed, &closed_in, closed_outcome)
            && z > ctx.today
        {
            probs.add(
                &input.column,
                get(input),
                ProblemKind::DateInFuture,
                Severity::Error,
                format!("a closed deal's close date is after today ({})", ctx.today),
            );
        }

        // Amount.
        let amount = match &amount_in {
            None => None,
            Some(input) => {
                let raw = get(input);
                if raw.is_empty() {
                    if mapping.requires("amount") {
                        probs.add(
                            &input.column,
                            raw,
                            ProblemKind::MissingRequired,
                            Severity::Error,
                            "required field `amount` is blank".into(),
                        );
                    }
                    None
                } else {
                    match parse_number(raw, mapping.source.decimal) {
                        Err(reason) => {
                            probs.add(&input.column, raw, ProblemKind::BadNumber, Severity::Error, reason.into());
                            None
                        }
                        Ok(v) if v >= mapping.validation.max_amount => {
                            probs.add(
                                &input.column,
                                raw,
                                ProblemKind::AmountTooLarge,
                                Severity::Error,
                                format!("amount must be below {}", mapping.validation.max_amount),
                            );
                            None
                        }
                        Ok(v) => match Amount::new(v) {
                            Ok(a) => Some(a),
                            Err(e) => {
                                probs.add(
                                    &input.column,
                                    raw,
                                    ProblemKind::NonPositiveAmount,
                                    Severity::Error,
                                    e.to_string(),
                                );
                                None
                            }
                        },
                    }
                }
            }
        };
        for field in ["name", "owner", "stage"] {
            let input = match field {
                "name" => &name_in,
                "owner" => &owner_in,
                _ => &stage_in,
            };
            if let Some(input) = input
                && mapping.requires(field)
                && get(input).is_empty()
            {
                probs.add(
                    &input.column,
                    "",
                    ProblemKind::MissingRequired,
                    Severity::Error,
                    format!("required field `{field}` is blank"),
                );
            }
        }

        // Features: a bad extra value is a warning and reads as blank.
        let mut nums = Vec::with_capacity(num_inputs.len());
        for input in &num_inputs {
            let raw = get(input);
            nums.push(if raw.is_empty() {
                f64::NAN
            } else {
                match parse_number(raw, mapping.source.decimal) {
                    Ok(v) => v,
                    Err(reason) => {
                        probs.add(
                            &input.column,
                            raw,
                            ProblemKind::BadNumber,
                            Severity::Warning,
                            format!("{reason}; treated as blank"),
                        );
                        f64::NAN
                    }
                }
            });
        }
        let mut stage_entered = vec![None; n_stage_slots];
        for (slot, input) in &stage_inputs {
            let raw = get(input);
            if raw.is_empty() {
                continue;
            }
            match dates.parse(raw) {
                Some(d) => stage_entered[*slot] = Some(d),
                None => probs.add(
                    &input.column,
                    raw,
                    ProblemKind::BadDate,
                    Severity::Warning,
                    "not a date; stage entry ignored".into(),
                ),
            }
        }

        let has_error = probs.has_error();
        if let Some(id) = &id {
            if let Some(&first) = first_row.get(id) {
                repeated_ids += 1;
                probs.add(
                    &id_in.column,
                    id.as_str(),
                    ProblemKind::DuplicateId,
                    Severity::Error,
                    format!("duplicate deal id; first seen on row {first}"),
                );
            } else if !has_error {
                first_row.insert(id.clone(), row);
            }
        }
        let has_error = probs.has_error();
        let deal_id = id.as_ref().map(|i| i.as_str().to_owned());
        if has_error {
            finish_row(&mut report, probs.list, deal_id.as_deref());
            continue;
        }
        let (Some(id), Some(outcome)) = (id, outcome) else {
            unreachable!("errors above quarantine rows without id or outcome")
        };

        let mut cats = Vec::with_capacity(cat_inputs.len());
        for (column, input) in schema.categorical.iter_mut().zip(&cat_inputs) {
            let raw = get(input);
            let value = mapping
                .aliases
                .get(&input.column)
                .or_else(|| mapping.aliases.get(&column.name))
                .and_then(|a| a.get(&normalize_key(raw)))
                .map_or(raw, String::as_str);
            cats.push(column.vocab.intern(value));
        }
        let stage = stage_in.as_ref().map_or(MISSING, |input| schema.stages.intern(get(input)));
        let stage_entered = if stage_inputs.is_empty() {
            Box::default()
        } else {
            stage_entered.resize(schema.stages.len(), None);
            stage_entered.into_boxed_slice()
        };
        match outcome {
            Outcome::Won => report.won += 1,
            Outcome::Lost => report.lost += 1,
            Outcome::Open => report.open += 1,
        }
        deals.push(Deal {
            id,
            name: name_in.as_ref().map(|i| get(i).to_owned()).unwrap_or_default(),
            created,
            closed,
            stage,
            stage_entered,
            amount,
            outcome,
            cats: cats.into_boxed_slice(),
            nums: nums.into_boxed_slice(),
            row,
        });
        finish_row(&mut report, probs.list, deal_id.as_deref());
    }
    // Stage vocabularies can grow after early deals were read; pad their histories.
    let n_stages = schema.stages.len();
    if schema.has_stage_history {
        for deal in &mut deals {
            if deal.stage_entered.len() < n_stages {
                let mut v = deal.stage_entered.to_vec();
                v.resize(n_stages, None);
                deal.stage_entered = v.into_boxed_slice();
            }
        }
    }

    flag_outliers(&deals, mapping, amount_in.as_ref().map(|i| i.column.as_str()), &mut report);
    // Owners are people, stored as written: names that differ only in case, spacing or
    // punctuation are kept apart and named, for someone to check in the CRM.
    for column in schema.categorical.iter().filter(|c| c.kind == CatKind::Owner) {
        for group in column.vocab.near_collisions() {
            let names: Vec<String> = group.iter().map(|n| format!("{n:?}")).collect();
            report.notices.push(format!(
                "{}: {} differ only in case, spacing or punctuation; kept as {} different people (check the CRM if they are one)",
                column.name,
                names.join(" and "),
                group.len()
            ));
        }
    }

    let rows = report.rows_read.max(1) as f64;
    report.rows_accepted = deals.len();
    report.rows_quarantined = report.rows_read - deals.len();
    let total_filled: usize = filled.iter().sum();
    report.completeness_pct = pct(total_filled as f64, rows * fill_inputs.len().max(1) as f64);
    report.validity_pct = pct(deals.len() as f64, rows);
    report.uniqueness_pct = pct((report.rows_read - repeated_ids) as f64, rows);
    report.columns = fill_inputs
        .iter()
        .zip(&filled)
        .map(|(input, &n)| ColumnQuality {
            field: input.field.clone(),
            column: input.column.clone(),
            filled: n,
            completeness_pct: pct(n as f64, rows),
        })
        .collect();
    report.problems.sort_by_key(|p| (p.severity, p.row));
    Ok(Ingested { dataset: Dataset { schema, deals }, report })
}

/// The problems of the row being read.
struct RowProblems {
    row: u32,
    list: Vec<Problem>,
}

impl RowProblems {
    fn add(&mut self, column: &str, value: &str, kind: ProblemKind, severity: Severity, reason: String) {
        self.list.push(Problem {
            row: self.row,
            deal_id: None,
            column: column.to_owned(),
            value: value.to_owned(),
            kind,
            severity,
            reason,
        });
    }

    fn has_error(&self) -> bool {
        self.list.iter().any(|p| p.severity == Severity::Error)
    }
}

fn pct(part: f64, whole: f64) -> f64 {
    if whole <= 0.0 { 100.0 } else { (1000.0 * part / whole).round() / 10.0 }
}

fn value_of<'c>(
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

fn finish_row(report: &mut QualityReport, mut problems: Vec<Problem>, deal_id: Option<&str>) {
    for p in &mut problems {
        p.deal_id = deal_id.map(str::to_owned);
        let counts = match p.severity {
            Severity::Error => &mut report.errors_by_kind,
            Severity::Warning => &mut report.warnings_by_kind,
        };
        *counts.entry(p.kind).or_default() += 1;
    }
    report.problems.extend(problems);
}

/// Flags (never rejects) amounts and cycle lengths further than `outlier_sigma` standard
/// deviations from the mean. Amounts are compared on the log scale, where deal sizes are roughly
/// normal; on the raw scale every large deal would be an "outlier".
fn flag_outliers(deals: &[Deal], mapping: &Mapping, amount_column: Option<&str>, report: &mut QualityReport) {
    let sigma = mapping.validation.outlier_sigma;
    let mut check = |values: Vec<(usize, f64)>, column: &str, label: &str, shown: &dyn Fn(f64) -> String| {
        if values.len() < 10 {
            return;
        }
        let n = values.len() as f64;
        let mean = values.iter().map(|v| v.1).sum::<f64>() / n;
        let sd = (values.iter().map(|v| (v.1 - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        if sd <= 0.0 {
            return;
        }
        for (i, v) in values {
            let z = (v - mean) / sd;
            if z.abs() > sigma {
                let deal = &deals[i];
                let p = Problem {
                    row: deal.row,
                    deal_id: Some(deal.id.to_string()),
                    column: column.to_owned(),
                    value: shown(v),
                    kind: ProblemKind::Outlier,
                    severity: Severity::Warning,
                    reason: format!("{label} is {:.1} standard deviations from the mean; flagged, kept", z.abs()),
                };
                *report.warnings_by_kind.entry(ProblemKind::Outlier).or_default() += 1;
                report.problems.push(p);
            }
        }
    };
    if let Some(column) = amount_column {
        let values = deals.iter().enumerate().filter_map(|(i, d)| Some((i, d.amount?.get().ln()))).collect();
        check(values, column, "log amount", &|v| format!("{:.0}", v.exp()));
    }
    if let Some(column) = mapping.fields.closed.as_deref() {
        let values = deals
            .iter()
            .enumerate()
            .filter(|(_, d)| d.outcome.is_closed())
            .filter_map(|(i, d)| Some((i, d.cycle_days()? as f64)))
            .collect();
        check(values, column, "sales cycle length (days)", &|v| format!("{v:.0} days"));
    }
}

/// Parses a number as exports write them: `1234`, `1,234.50`, `$ 1,234`, `€1.234,50` (with
/// `decimal = ','`), `(1,234)` for negatives, `12%`, `USD 900`.
pub fn parse_number(raw: &str, decimal: char) -> Result<f64, &'static str> {
    let mut s = raw.trim();
    // Most cells are plain numbers; with a decimal comma "1,5" must not parse as it stands.
    if (decimal == '.' || !s.contains(','))
        && let Ok(v) = s.parse::<f64>()
        && v.is_finite()
    {
        return Ok(v);
    }
    let mut negative = false;
    if let Some(inner) = s.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
        negative = true;
        s = inner.trim();
    }
    for code in ["USD", "EUR", "GBP", "INR", "JPY", "CAD", "AUD"] {
        s = s.strip_prefix(code).or_else(|| s.strip_suffix(code)).unwrap_or(s).trim();
    }
    let thousands: &[char] =
        if decimal == ',' { &['.', ' ', '\u{a0}', '\u{202f}', '\''] } else { &[',', ' ', '\u{a0}', '\u{202f}', '\''] };
    let mut cleaned = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '$' | '€' | '£' | '¥' | '₹' | '%' => {}
            '-' | '−' if cleaned.is_empty() => negative = !negative,
            c if thousands.contains(&c) => {}
            c if c == decimal => cleaned.push('.'),
            c if c.is_ascii_digit() || c == 'e' || c == 'E' || c == '+' || (c == '-' && !cleaned.is_empty()) => {
                cleaned.push(c);
            }
            _ => return Err("not a number"),
        }
    }
    if cleaned.is_empty() {
        return Err("not a number");
    }
    let value: f64 = cleaned.parse().map_err(|_| "not a number")?;
    if !value.is_finite() {
        return Err("not a finite number");
    }
    Ok(if negative { -value } else { value })
}

/// Parses dates with the mapping's formats, then as an ISO date-time (`2024-01-15T10:30:00Z`,
/// `2024-01-15 10:30:00`, Salesforce's `2024-01-15T10:30:00.000+0000`), keeping the date part.
/// Formats are compiled once; plain ISO dates take a fast path.
#[derive(Debug)]
pub struct DateParser {
    formats: Vec<Vec<chrono::format::Item<'static>>>,
    iso: bool,
}

impl DateParser {
    pub fn new(formats: &[String]) -> Self {
        let compiled =
            formats.iter().filter_map(|f| chrono::format::StrftimeItems::new(f).parse_to_owned().ok()).collect();
        DateParser { formats: compiled, iso: formats.iter().any(|f| f == "%Y-%m-%d") }
    }

    pub fn parse(&self, raw: &str) -> Option<NaiveDate> {
        let s = raw.trim();
        if self.iso
            && let Some(d) = iso_date(s)
        {
            return Some(d);
        }
        for items in &self.formats {
            let mut parsed = chrono::format::Parsed::new();
            if chrono::format::parse(&mut parsed, s, items.iter()).is_ok()
                && let Ok(d) = parsed.to_naive_date()
            {
                return Some(d);
            }
        }
        let bytes = s.as_bytes();
        if s.len() > 10 && matches!(bytes[10], b'T' | b' ') {
            return iso_date(&s[..10]);
        }
        None
    }
}

/// `YYYY-MM-DD` without a format engine (the common case, ten times faster).
fn iso_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
    };
    NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)
}

/// One-off parse with `formats` (see [`DateParser`]).
pub fn parse_date(raw: &str, formats: &[String]) -> Option<NaiveDate> {
    DateParser::new(formats).parse(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPPING: &str = r#"
        [fields]
        id = "id"
        outcome = "outcome"
        amount = "amount"
        created = "created"
        closed = "closed"
        owner = "rep"
        [outcome]
        won = ["Won"]
        lost = ["Lost"]
        open = ["Open"]
        [segments]
        industry = "industry"
        [features]
        numeric = ["contacts"]
    "#;
    const HEADER: &str = "id,outcome,amount,created,closed,rep,industry,contacts";
    const GOOD: [&str; 2] = ["D1,Won,1000,2024-01-01,2024-02-01,r1,SaaS,3", "D2,Open,2000,2024-03-01,,r2,SaaS,"];

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 6, 30).unwrap()
    }

    fn read(text: &str) -> Ingested {
        let mapping = Mapping::from_toml(MAPPING).unwrap();
        ingest(text.as_bytes(), &mapping, Vec::new(), Context { today: today() }).unwrap()
    }

    #[test]
    fn each_kind_of_bad_row_is_quarantined_and_described() {
        // (bad row, kind, column, value, words in the reason)
        let cases: [(&str, ProblemKind, &str, &str, &str); 13] = [
            (",Won,1000,2024-01-01,2024-02-01,r1,SaaS,1", ProblemKind::MissingRequired, "id", "", "empty"),
            (
                "D9,Pending,1000,2024-01-01,2024-02-01,r1,SaaS,1",
                ProblemKind::UnknownOutcome,
                "outcome",
                "Pending",
                "Won, Lost, Open",
            ),
            ("D9,Won,,2024-01-01,2024-02-01,r1,SaaS,1", ProblemKind::MissingRequired, "amount", "", "amount"),
            ("D9,Won,lots,2024-01-01,2024-02-01,r1,SaaS,1", ProblemKind::BadNumber, "amount", "lots", "not a number"),
            (
                "D9,Won,-5,2024-01-01,2024-02-01,r1,SaaS,1",
                ProblemKind::NonPositiveAmount,
                "amount",
                "-5",
                "greater than 0",
            ),
            (
                "D9,Won,0,2024-01-01,2024-02-01,r1,SaaS,1",
                ProblemKind::NonPositiveAmount,
                "amount",
                "0",
                "greater than 0",
            ),
            (
                "D9,Won,\"$12,000,000\",2024-01-01,2024-02-01,r1,SaaS,1",
                ProblemKind::AmountTooLarge,
                "amount",
                "$12,000,000",
                "below",
            ),
            (
                "D9,Won,1000,31/31/2023,2024-02-01,r1,SaaS,1",
                ProblemKind::BadDate,
                "created",
                "31/31/2023",
                "not a date",
            ),
            (
                "D9,Won,1000,2024-03-01,2024-02-01,r1,SaaS,1",
                ProblemKind::ClosedBeforeCreated,
                "closed",
                "2024-02-01",
                "before created",
            ),
            ("D9,Open,1000,2024-08-01,,r1,SaaS,1", ProblemKind::DateInFuture, "created", "2024-08-01", "after today"),
            (
                "D9,Won,1000,2024-01-01,2024-07-15,r1,SaaS,1",
                ProblemKind::DateInFuture,
                "closed",
                "2024-07-15",
                "after today",
            ),
            (
                "D9,Lost,1000,2024-01-01,,r1,SaaS,1",
                ProblemKind::MissingRequired,
                "closed",
                "",
                "lost deal needs a closed date",
            ),
            (
                "D9,Won,1000,2024-01-01,2024-02-01,r1",
                ProblemKind::MalformedRow,
                "",
                "D9,Won,1000,2024-01-01,2024-02-01,r1",
                "6 fields, the header has 8",
            ),
        ];
        for (bad, kind, column, value, reason) in cases {
            let text = format!("{HEADER}\n{}\n{bad}\n{}\n", GOOD[0], GOOD[1]);
            let out = read(&text);
            let report = &out.report;
            assert_eq!(report.rows_read, 3, "{bad}");
            assert_eq!(report.rows_accepted, 2, "good rows survive: {bad}");
            assert_eq!(report.rows_quarantined, 1, "{bad}");
            assert_eq!(report.errors_by_kind.get(&kind), Some(&1), "{bad}: {:?}", report.errors_by_kind);
            let p = report.quarantined_rows().next().unwrap();
            assert_eq!((p.row, p.kind, p.column.as_str(), p.value.as_str()), (2, kind, column, value), "{bad}");
            assert!(p.reason.contains(reason), "{bad}: reason {:?} lacks {reason:?}", p.reason);
            assert!(out.dataset.deals.iter().all(|d| d.id.as_str() != "D9"), "quarantined rows are left out");
            assert!(report.validity_pct < 100.0);
        }
    }

    #[test]
    fn a_repeated_id_keeps_the_first_row_and_names_it() {
        let text = format!("{HEADER}\n{}\n{}\nD1,Lost,5,2024-01-01,2024-02-01,r1,SaaS,1\n", GOOD[0], GOOD[1]);
        let out = read(&text);
        let p = out.report.quarantined_rows().next().unwrap();
        assert_eq!((p.row, p.kind), (3, ProblemKind::DuplicateId));
        assert!(p.reason.contains("first seen on row 1"), "{}", p.reason);
        assert_eq!(out.dataset.find("D1").unwrap().outcome, Outcome::Won);
        assert!((out.report.uniqueness_pct - 66.7).abs() < 0.05);
    }

    #[test]
    fn warnings_keep_the_row() {
        // A bad extra feature reads as blank; an outlier amount is flagged but kept.
        let mut rows = vec![HEADER.to_owned(), "D1,Won,1000,2024-01-01,2024-02-01,r1,SaaS,many".to_owned()];
        for i in 2..40 {
            rows.push(format!("D{i},Lost,{},2024-01-01,2024-02-01,r1,SaaS,2", 1000 + i));
        }
        rows.push("D99,Won,9000000,2024-01-01,2024-02-01,r1,SaaS,2".to_owned());
        let out = read(&rows.join("\n"));
        assert_eq!(out.report.rows_quarantined, 0);
        assert_eq!(out.report.warnings_by_kind.get(&ProblemKind::BadNumber), Some(&1));
        assert_eq!(out.report.warnings_by_kind.get(&ProblemKind::Outlier), Some(&1));
        assert!(out.dataset.find("D1").unwrap().nums[0].is_nan());
        let outlier = out.report.problems.iter().find(|p| p.kind == ProblemKind::Outlier).unwrap();
        assert_eq!((outlier.deal_id.as_deref(), outlier.severity), (Some("D99"), Severity::Warning));
    }

    #[test]
    fn line_endings_bom_quotes_padding_and_currency_do_not_change_the_data() {
        let rows = [
            HEADER,
            "D1,Won,\"$1,000.00\",2024-01-01,2024-02-01, r1 ,\"SaaS\",3",
            "D2, open ,2000,2024-03-01,,r2,saas,",
            "\"D3\",Lost,\" 1,500 \",2024-01-05,2024-03-01,r1,\"Fin, Tech\",1",
        ];
        let reference = read(&format!("{}\n", rows.join("\n")));
        for text in [
            rows.join("\r\n"),
            format!("{}\r", rows.join("\r")),
            format!("\u{feff}{}\n", rows.join("\n")),
            format!("{}\n\n", rows.join("\n")),
        ] {
            let other = read(&text);
            assert_eq!(other.report.rows_accepted, 3, "{text:?}");
            for (a, b) in reference.dataset.deals.iter().zip(&other.dataset.deals) {
                assert_eq!(
                    (&a.id, a.outcome, a.amount, a.created, a.closed, &a.cats),
                    (&b.id, b.outcome, b.amount, b.created, b.closed, &b.cats)
                );
            }
        }
        let ds = &reference.dataset;
        assert_eq!(ds.find("D1").unwrap().amount.unwrap().get(), 1000.0);
        assert_eq!(ds.find("D3").unwrap().amount.unwrap().get(), 1500.0);
        assert_eq!(ds.find("D2").unwrap().outcome, Outcome::Open);
        // "SaaS" and "saas" are one industry; the quoted "Fin, Tech" stays one value.
        assert_eq!(ds.schema.categorical[0].vocab.values(), ["SaaS", "Fin, Tech"]);
        assert_eq!(ds.cat_name(1, ds.find("D1").unwrap().cats[1]), Some("r1"));
        // The blank contacts cell is missing, not zero; completeness counts it.
        assert!(ds.find("D2").unwrap().nums[0].is_nan());
        assert!(reference.report.completeness_pct < 100.0);
    }

    #[test]
    fn a_missing_mapped_column_is_a_clear_error() {
        let mapping = Mapping::from_toml(MAPPING).unwrap();
        let err =
            ingest("id,outcome\nD1,Won\n".as_bytes(), &mapping, Vec::new(), Context { today: today() }).unwrap_err();
        let msg = err.to_string();
        // Every missing column at once, so the mapping can be fixed in one go.
        for part in [
            "field `amount` names column \"amount\"",
            "field `owner` names column \"rep\"",
            "segment `industry` names column \"industry\"",
            "numeric feature `contacts`",
            "(columns: id, outcome)",
        ] {
            assert!(msg.contains(part), "{msg} lacks {part}");
        }
    }

    #[test]
    fn joins_bring_columns_in_by_normalised_key() {
        let mapping = Mapping::from_toml(
            r#"
            [fields]
            id = "id"
            outcome = "outcome"
            [outcome]
            won = ["Won"]
            lost = ["Lost"]
            [segments]
            industry = "sector"
            [validation]
            required = []
            [[join]]
            file = "accounts.csv"
            on = "account"
            [values.sector]
            technolgy = "technology"
            "#,
        )
        .unwrap();
        let accounts =
            read_table("account,sector\nAcme Corp,technolgy\nBeta,retail\n".as_bytes(), &Source::default()).unwrap();
        let out = ingest(
            "id,outcome,account\n1,Won,ACME corp\n2,Lost,Gamma\n3,Won,Beta\n".as_bytes(),
            &mapping,
            vec![accounts],
            Context { today: today() },
        )
        .unwrap();
        let ds = &out.dataset;
        assert_eq!(ds.cat_name(0, ds.find("1").unwrap().cats[0]), Some("technology"));
        assert_eq!(ds.find("2").unwrap().cats[0], MISSING);
        let miss = out.report.problems.iter().find(|p| p.kind == ProblemKind::JoinMiss).unwrap();
        assert_eq!((miss.row, miss.value.as_str(), miss.severity), (2, "Gamma", Severity::Warning));
    }

    #[test]
    fn numbers_in_export_formats() {
        let check = |raw: &str, decimal: char, want: Option<f64>| {
            assert_eq!(parse_number(raw, decimal).ok(), want, "{raw:?} with decimal {decimal:?}");
        };
        check("1234", '.', Some(1234.0));
        check(" 1,234.50 ", '.', Some(1234.5));
        check("$45,000", '.', Some(45000.0));
        check("$ 45 000", '.', Some(45000.0));
        check("USD 900", '.', Some(900.0));
        check("€1.234,50", ',', Some(1234.5));
        check("1 234,5", ',', Some(1234.5));
        check("(1,200)", '.', Some(-1200.0));
        check("-5", '.', Some(-5.0));
        check("12%", '.', Some(12.0));
        check("1e3", '.', Some(1000.0));
        check("abc", '.', None);
        check("12abc", '.', None);
        check("", '.', None);
        check("$", '.', None);
    }

    #[test]
    fn dates_in_configured_and_iso_formats() {
        let formats: Vec<String> = vec!["%Y-%m-%d".into(), "%m/%d/%Y".into()];
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day);
        assert_eq!(parse_date("2024-01-15", &formats), d(2024, 1, 15));
        assert_eq!(parse_date("01/15/2024", &formats), d(2024, 1, 15));
        assert_eq!(parse_date("2024-01-15T10:30:00.000+0000", &formats), d(2024, 1, 15));
        assert_eq!(parse_date("2024-01-15 10:30", &formats), d(2024, 1, 15));
        assert_eq!(parse_date("15.01.2024", &formats), None);
        assert_eq!(parse_date("2024-02-30", &formats), None);
        assert_eq!(parse_date("soon", &formats), None);
    }
}
