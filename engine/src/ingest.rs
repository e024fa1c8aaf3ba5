//! CSV export → validated [`Dataset`] plus a [`QualityReport`].
//!
//! The caller opens files and passes readers; this module never touches the file system. Real
//! exports are messy, so reading is forgiving where meaning is unambiguous (any line ending, a
//! byte-order mark, padded cells, `$1,234.50`, Windows-1252 bytes) and strict where it is not
//! (an unparseable date, an unknown outcome label, a duplicate id). A row with an error is
//! quarantined: it is left out of the dataset, counted, and described by row, column, value and
//! reason. A row with only warnings is kept.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;

use chrono::NaiveDate;

use crate::dataset::{CatColumn, CatKind, Dataset, Deal, MISSING, Schema, Vocab};
use crate::domain::{Amount, DealId, Outcome};
use crate::mapping::{BlankOutcome, Mapping, MissingColumns, Source, normalize_key};

mod checks;
mod columns;
mod parse;
mod report;

use checks::{RowProblems, finish_row, flag_outliers, pct};
pub use columns::Table;
use columns::{Cell, Resolver, value_of};
pub use parse::{DateParser, parse_date, parse_number};
pub use report::{ColumnQuality, Problem, ProblemKind, QualityReport, Severity};

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

#[cfg(test)]
mod tests;
