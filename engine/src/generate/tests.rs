//! Tests of `generate`.

use std::collections::{HashMap, HashSet};
use std::error::Error;

use super::model::INDUSTRY_SPELLINGS;
use super::*;
use crate::dataset::{Dataset, Deal as Row};
use crate::ingest::{Context, Ingested, ingest};
use crate::mapping::Mapping;

type TestResult = Result<(), Box<dyn Error>>;

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 30).expect("a valid date")
}

fn write(config: &GenerateConfig) -> io::Result<(Vec<u8>, GenerateSummary)> {
    let mut bytes = Vec::new();
    let summary = generate(config, &mut bytes)?;
    Ok((bytes, summary))
}

fn read(bytes: &[u8]) -> Result<Ingested, Box<dyn Error>> {
    let mapping = Mapping::from_toml(include_str!("../../../bot/mappings/generated.toml"))?;
    Ok(ingest(bytes, &mapping, vec![], Context { today: as_of() })?)
}

/// Win rate in percent of the closed deals passing `keep`, and how many there were.
fn win_rate(dataset: &Dataset, keep: impl Fn(&Row) -> bool) -> (f64, usize) {
    let closed: Vec<&Row> = dataset.deals.iter().filter(|d| d.outcome.is_closed() && keep(d)).collect();
    let won = closed.iter().filter(|d| d.outcome == Outcome::Won).count();
    (100.0 * won as f64 / closed.len().max(1) as f64, closed.len())
}

fn sym(dataset: &Dataset, column: &str, value: &str) -> Result<(usize, u32), Box<dyn Error>> {
    let c = dataset.schema.column(column).ok_or(format!("no column {column}"))?;
    let s = dataset.schema.categorical[c].vocab.lookup(value).ok_or(format!("no {value} in {column}"))?;
    Ok((c, s))
}

fn median(mut values: Vec<i64>) -> i64 {
    values.sort_unstable();
    values[values.len() / 2]
}

#[test]
fn the_same_config_writes_the_same_bytes_and_another_seed_does_not() -> TestResult {
    for messy in [false, true] {
        let config = GenerateConfig { messy, ..GenerateConfig::new(2_000, 42, as_of()) };
        let (first, summary) = write(&config)?;
        let (again, summary_again) = write(&config)?;
        assert!(first == again, "messy = {messy}: same config, different bytes");
        assert_eq!(summary, summary_again);
        let (other, _) = write(&GenerateConfig { seed: 43, ..config })?;
        assert!(first != other, "messy = {messy}: another seed wrote the same bytes");
    }
    Ok(())
}

#[test]
fn a_clean_file_ingests_without_errors_and_matches_the_summary() -> TestResult {
    let (bytes, summary) = write(&GenerateConfig::new(3_000, 7, as_of()))?;
    let Ingested { dataset, report } = read(&bytes)?;
    assert!(report.errors_by_kind.is_empty(), "{:?}", report.errors_by_kind);
    assert_eq!(report.rows_accepted, 3_000);
    assert_eq!(summary.deals, 3_000);
    assert_eq!((report.won, report.lost, report.open), (summary.won, summary.lost, summary.open));
    assert!(summary.planted.is_empty() && summary.truth.is_empty());
    assert!(summary.open > 0, "no open deals");
    let open: Vec<&Row> = dataset.deals.iter().filter(|d| d.outcome == Outcome::Open).collect();
    assert!(open.iter().all(|d| d.closed.is_none()), "an open deal has a close date");
    assert_eq!(open.len(), summary.open);
    // Only the warnings a real export could raise: flagged outlying amounts or cycles.
    assert!(report.warnings_by_kind.keys().all(|k| *k == ProblemKind::Outlier), "{:?}", report.warnings_by_kind);
    assert!(dataset.schema.has_stage_history);
    assert_eq!(dataset.schema.numeric, ["contacts", "discount_pct"]);
    Ok(())
}

#[test]
fn messy_files_report_exactly_the_planted_errors() -> TestResult {
    let config = GenerateConfig { messy: true, ..GenerateConfig::new(5_000, 11, as_of()) };
    let (bytes, summary) = write(&config)?;
    assert!(bytes.starts_with(b"\xEF\xBB\xBFdeal_id,account,"));
    assert!(bytes.windows(2).filter(|w| w == b"\r\n").count() == 5_001, "every line ends in CRLF");
    let text = String::from_utf8(bytes.clone())?;
    assert!(text.contains("\"$"), "no amount written with a currency sign");
    assert!(text.contains("Health Tech") || text.contains("healthtech") || text.contains("Health-Tech"));

    let Ingested { dataset, report } = read(&bytes)?;
    assert_eq!(summary.planted.len(), 6, "{:?}", summary.planted);
    for (kind, planted) in &summary.planted {
        assert_eq!(*planted, 15, "0.3% of 5,000 rows for {kind:?}");
        assert_eq!(report.errors_by_kind.get(kind), Some(planted), "{kind:?}");
    }
    let planted: usize = summary.planted.values().sum();
    assert_eq!(report.errors_by_kind.values().sum::<usize>(), planted, "{:?}", report.errors_by_kind);
    assert_eq!(report.rows_quarantined, planted);
    assert_eq!(report.rows_accepted, 5_000 - planted);
    assert_eq!((report.won, report.lost, report.open), (summary.won, summary.lost, summary.open));
    assert!(!report.errors_by_kind.contains_key(&ProblemKind::BadNumber));
    assert!(!report.warnings_by_kind.contains_key(&ProblemKind::BadNumber));

    let industry = dataset.schema.column("industry").ok_or("no industry column")?;
    let names: HashSet<&str> = dataset.schema.categorical[industry].vocab.values().iter().map(String::as_str).collect();
    assert_eq!(names, INDUSTRIES.iter().map(|l| l.name).collect(), "re-spellings merged under the usual names");
    let lead = dataset.schema.column("lead_source").ok_or("no lead_source column")?;
    assert_eq!(dataset.schema.categorical[lead].vocab.len(), LEAD_SOURCES.len());
    assert!(dataset.deals.iter().any(|d| d.cats[lead] == crate::dataset::MISSING), "no blank lead sources");
    Ok(())
}

#[test]
fn a_messy_file_holds_the_clean_files_deals() -> TestResult {
    let clean = GenerateConfig::new(1_000, 5, as_of());
    let messy = GenerateConfig { messy: true, ..clean };
    let (clean_bytes, _) = write(&clean)?;
    let (messy_bytes, summary) = write(&messy)?;
    let (clean, messy) = (read(&clean_bytes)?.dataset, read(&messy_bytes)?.dataset);
    let by_id: HashMap<&str, &Row> = clean.deals.iter().map(|d| (d.id.as_str(), d)).collect();
    assert_eq!(messy.deals.len(), 1_000 - summary.planted.values().sum::<usize>());
    for deal in &messy.deals {
        let twin = by_id[deal.id.as_str()];
        assert_eq!((deal.created, deal.closed, deal.outcome), (twin.created, twin.closed, twin.outcome));
        assert_eq!(deal.amount, twin.amount);
    }
    Ok(())
}

#[test]
fn the_planted_effects_show_in_closed_deals() -> TestResult {
    let (bytes, _) = write(&GenerateConfig::new(20_000, 2_024, as_of()))?;
    let data = read(&bytes)?.dataset;

    let (lead, referral) = sym(&data, "lead_source", "Referral")?;
    let (_, outbound) = sym(&data, "lead_source", "Outbound")?;
    let (referral_rate, _) = win_rate(&data, |d| d.cats[lead] == referral);
    let (outbound_rate, _) = win_rate(&data, |d| d.cats[lead] == outbound);
    assert!(referral_rate - outbound_rate >= 10.0, "Referral {referral_rate:.1}% vs Outbound {outbound_rate:.1}%");

    let closed_within = |d: &Row, days: i64| d.closed.is_some_and(|c| (as_of() - c).num_days() < days);
    let (industry, health) = sym(&data, "industry", DROPPING_INDUSTRY)?;
    let (recent, n_recent) = win_rate(&data, |d| d.cats[industry] == health && closed_within(d, 91));
    let (earlier, _) = win_rate(&data, |d| d.cats[industry] == health && !closed_within(d, 91));
    assert!(n_recent >= 200, "only {n_recent} recent HealthTech closes");
    assert!(earlier - recent >= 12.0, "HealthTech: {recent:.1}% in the last 91 days vs {earlier:.1}% before");

    let (owner, rep7) = sym(&data, "owner", SLIPPING_REP)?;
    let (recent, n_recent) = win_rate(&data, |d| d.cats[owner] == rep7 && closed_within(d, 120));
    let (earlier, _) = win_rate(&data, |d| d.cats[owner] == rep7 && !closed_within(d, 120));
    assert!(n_recent >= 20, "only {n_recent} recent closes for {SLIPPING_REP}");
    assert!(recent < earlier, "{SLIPPING_REP}: {recent:.1}% in the last 120 days vs {earlier:.1}% before");

    let cycles = |o: Outcome| data.deals.iter().filter(|d| d.outcome == o).filter_map(Row::cycle_days).collect();
    let (won, lost) = (median(cycles(Outcome::Won)), median(cycles(Outcome::Lost)));
    assert!(lost > won, "median cycle: lost {lost} days, won {won} days");
    Ok(())
}

#[test]
fn kept_truth_covers_every_open_deal_with_a_final_outcome() -> TestResult {
    let config = GenerateConfig { keep_truth: true, ..GenerateConfig::new(3_000, 3, as_of()) };
    let (bytes, summary) = write(&config)?;
    assert_eq!(summary.truth.len(), summary.open);
    assert!(summary.truth.iter().all(|(_, o)| matches!(o, Outcome::Won | Outcome::Lost)));
    assert!(
        summary.truth.iter().any(|(_, o)| *o == Outcome::Won) && summary.truth.iter().any(|(_, o)| *o == Outcome::Lost)
    );
    let data = read(&bytes)?.dataset;
    let open: HashSet<&str> = data.deals.iter().filter(|d| d.outcome == Outcome::Open).map(|d| d.id.as_str()).collect();
    assert!(summary.truth.iter().all(|(id, _)| open.contains(id.as_str())));
    // Keeping the truth changes nothing in the file.
    assert!(bytes == write(&GenerateConfig { keep_truth: false, ..config })?.0);

    let messy = GenerateConfig { messy: true, ..config };
    let summary = write(&messy)?.1;
    assert_eq!(summary.truth.len(), summary.open);
    Ok(())
}

#[test]
fn stage_histories_increase_and_end_by_the_close() -> TestResult {
    let (bytes, _) = write(&GenerateConfig::new(3_000, 9, as_of()))?;
    let mut csv = csv::Reader::from_reader(&bytes[..]);
    assert_eq!(csv.headers()?.iter().collect::<Vec<_>>(), COLUMNS);
    let col = |name: &str| COLUMNS.iter().position(|c| *c == name).ok_or(format!("no column {name}"));
    let (created_c, closed_c, stage_c, outcome_c) =
        (col("created_date")?, col("closed_date")?, col("stage")?, col("outcome")?);
    let (cycle_c, reason_c, first_entry) = (col("sales_cycle_days")?, col("loss_reason")?, col("entered_qualified")?);
    let start = as_of() - chrono::Duration::days(730);
    let mut lost_stops = [0usize; 4];
    for record in csv.records() {
        let r = record?;
        let date = |i: usize| NaiveDate::parse_from_str(&r[i], "%Y-%m-%d");
        let created = date(created_c)?;
        assert!(start <= created && created <= as_of(), "created {created}");
        let entries: Vec<NaiveDate> =
            (first_entry..first_entry + 4).take_while(|&i| !r[i].is_empty()).map(date).collect::<Result<_, _>>()?;
        assert!((first_entry..first_entry + 4).skip(entries.len()).all(|i| r[i].is_empty()), "gap in {r:?}");
        assert_eq!(entries.first(), Some(&created), "Qualified is entered on creation");
        assert!(entries.windows(2).all(|w| w[0] < w[1]), "entries not increasing: {r:?}");
        let last = *entries.last().ok_or("no entries")?;
        match &r[outcome_c] {
            "Open" => {
                assert!(last <= as_of() && r[closed_c].is_empty() && r[cycle_c].is_empty() && r[reason_c].is_empty());
                assert_eq!(&r[stage_c], STAGES[entries.len() - 1], "open deal's stage is its latest entry");
            }
            outcome => {
                let closed = date(closed_c)?;
                assert!(last <= closed && closed <= as_of(), "{r:?}");
                assert_eq!(r[cycle_c].parse::<i64>()?, (closed - created).num_days());
                assert!((7..=365).contains(&(closed - created).num_days()));
                if outcome == "Won" {
                    assert_eq!((&r[stage_c], entries.len(), &r[reason_c]), ("Closed Won", 4, ""));
                } else {
                    assert_eq!(&r[stage_c], "Closed Lost");
                    assert!(LOSS_REASONS.iter().any(|(name, _)| *name == &r[reason_c]));
                    lost_stops[entries.len() - 1] += 1;
                }
            }
        }
    }
    assert!(lost_stops.iter().all(|&n| n > 0), "lost deals stop in every stage: {lost_stops:?}");
    assert!(lost_stops[0] > lost_stops[3], "{lost_stops:?}");
    Ok(())
}

#[test]
fn acme_corp_has_an_open_deal_from_fifty_deals() -> TestResult {
    for (deals, seed) in [(50, 1), (51, 2), (3_000, 3), (10_000, 4)] {
        let data = read(&write(&GenerateConfig::new(deals, seed, as_of()))?.0)?.dataset;
        let acme: Vec<&Row> = data.deals.iter().filter(|d| d.name == ACME).collect();
        let showcase = acme.iter().find(|d| d.outcome == Outcome::Open && d.created == Some(as_of() - Days::new(45)));
        assert!(showcase.is_some(), "{deals} deals: no open Acme deal created 45 days ago");
        assert_eq!(data.deals.iter().filter(|d| d.name.contains("Acme")).count(), acme.len());
    }
    let small = write(&GenerateConfig::new(49, 1, as_of()))?.0;
    assert!(!String::from_utf8(small)?.contains("Acme"));
    Ok(())
}

#[test]
fn ids_reps_and_accounts_follow_the_row_count() -> TestResult {
    let (bytes, summary) = write(&GenerateConfig::new(12, 1, as_of()))?;
    let text = String::from_utf8(bytes)?;
    assert_eq!(text.lines().count(), 13);
    assert!(text.lines().nth(1).is_some_and(|l| l.starts_with("D000001,")), "{text}");
    assert!(text.lines().nth(12).is_some_and(|l| l.starts_with("D000012,")));
    assert_eq!(summary.won + summary.lost + summary.open, 12);

    let data = read(&write(&GenerateConfig::new(30_000, 8, as_of()))?.0)?.dataset;
    assert!(data.find("D030000").is_some());
    let owner = data.schema.owner_column().ok_or("no owner")?;
    let reps = &data.schema.categorical[owner].vocab;
    assert_eq!(reps.len(), 80, "30,000 / 250 = 120 reps, capped at 80");
    let mut books = vec![0usize; reps.len()];
    data.deals.iter().for_each(|d| books[d.cats[owner] as usize] += 1);
    let (least, most) = (books.iter().min().ok_or("no reps")?, books.iter().max().ok_or("no reps")?);
    assert!(*most > 2 * *least, "books should differ in size: {least}..{most}");

    let accounts: HashSet<&str> = data.deals.iter().map(|d| d.name.as_str()).collect();
    assert!((8_500..=10_000).contains(&accounts.len()), "{} accounts for 30,000 deals", accounts.len());
    // An account keeps its industry and region across deals.
    let (industry, region) = (data.schema.column("industry").ok_or("")?, data.schema.column("region").ok_or("")?);
    let mut seen: HashMap<&str, (u32, u32)> = HashMap::new();
    for d in &data.deals {
        let segment = (d.cats[industry], d.cats[region]);
        assert_eq!(*seen.entry(d.name.as_str()).or_insert(segment), segment, "{}", d.name);
    }
    Ok(())
}

#[test]
fn account_names_are_distinct_and_the_constants_agree() {
    let mut compounds = HashSet::new();
    for head in NAME_HEADS {
        for tail in NAME_TAILS {
            assert!(compounds.insert(format!("{head}{tail}")), "{head}{tail} twice");
        }
    }
    assert_eq!(NAME_TRADES.iter().collect::<HashSet<_>>().len(), NAME_TRADES.len());
    assert_eq!(NAME_SUFFIXES.iter().collect::<HashSet<_>>().len(), NAME_SUFFIXES.len());
    let (mut a, mut b) = (NAME_STRIDE, NAME_COUNT);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    assert_eq!(a, 1, "the stride must be coprime with the name count");
    assert!(NAME_COUNT as usize >= 1_000_000 / DEALS_PER_ACCOUNT, "a million deals need ~333k names");

    assert_eq!(INDUSTRIES[HEALTHTECH].name, DROPPING_INDUSTRY);
    assert_eq!(format!("rep_{}", SLIPPING_REP_INDEX + 1), SLIPPING_REP);
    assert_eq!((REGIONS[APAC].name, PRODUCTS[ENTERPRISE].level.name), ("APAC", "Enterprise"));
    let total = |shares: &mut dyn Iterator<Item = f64>| shares.sum::<f64>();
    for sum in [
        total(&mut INDUSTRIES.iter().map(|l| l.share)),
        total(&mut REGIONS.iter().map(|l| l.share)),
        total(&mut PRODUCTS.iter().map(|p| p.level.share)),
        total(&mut LEAD_SOURCES.iter().map(|l| l.share)),
        total(&mut LOST_LAST_STAGE.iter().copied()),
        total(&mut LOSS_REASONS.iter().map(|r| r.1)),
    ] {
        assert!((sum - 1.0).abs() < 1e-9, "shares sum to {sum}");
    }
    for (canonical, spellings) in INDUSTRIES.iter().zip(INDUSTRY_SPELLINGS) {
        for s in spellings {
            assert_eq!(crate::mapping::normalize_key(s), crate::mapping::normalize_key(canonical.name));
        }
    }
}

#[test]
fn small_and_invalid_configs() -> TestResult {
    let (bytes, summary) = write(&GenerateConfig::new(0, 1, as_of()))?;
    assert_eq!(String::from_utf8(bytes)?, format!("{}\n", COLUMNS.join(",")));
    assert_eq!(summary, GenerateSummary::default());
    let messy = write(&GenerateConfig { messy: true, ..GenerateConfig::new(99, 1, as_of()) })?.1;
    assert!(messy.planted.is_empty(), "bad rows are planted from 100 deals up");
    let messy = write(&GenerateConfig { messy: true, ..GenerateConfig::new(100, 1, as_of()) })?.1;
    assert_eq!(messy.planted.values().copied().collect::<Vec<_>>(), [1; 6]);
    let day = write(&GenerateConfig { history_days: 0, ..GenerateConfig::new(200, 1, as_of()) })?.1;
    assert_eq!(day.open, 200, "deals created today are all open");
    for history_days in [-1, MAX_HISTORY_DAYS + 1] {
        let err = write(&GenerateConfig { history_days, ..GenerateConfig::new(10, 1, as_of()) }).err();
        assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::InvalidInput));
    }
    Ok(())
}

#[test]
fn thousands_separators() {
    for (n, want) in [(0, "0"), (999, "999"), (1_000, "1,000"), (45_000, "45,000"), (1_234_567, "1,234,567")] {
        let mut s = String::from("$");
        push_thousands(&mut s, n);
        assert_eq!(s, format!("${want}"));
    }
}
