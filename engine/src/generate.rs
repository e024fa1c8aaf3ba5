//! Synthetic CRM exports with known, planted effects: Dealwatch's demo data and test bed.
//!
//! [`generate`] writes a CSV that looks like a real CRM export, one row per deal with stage entry
//! dates and an after-close loss reason, but whose wins and losses follow the model written out
//! below. Because the truth is known, the demo can show Dealwatch finding it and the tests can
//! check that it does. `bot/mappings/generated.toml` is the mapping that reads these files.
//!
//! The same configuration always produces the same bytes (see [Determinism](#determinism)).
//!
//! # Columns
//!
//! | column | contents |
//! |---|---|
//! | `deal_id` | `D` and the row number, zero-padded to at least 6 digits (`D000001`); ids follow creation order, as CRM ids do |
//! | `account` | a company name such as "Bluepeak Logistics Inc"; about one account per three deals (at most 786,432), each with a fixed industry and region. "Acme Corp" exists whenever there are at least 50 deals, and its deal created 45 days before the as-of date is still open then |
//! | `owner`, `manager` | reps `rep_1` … `rep_R` (R = deals / 250, kept within 20–80) carrying books of unequal size; rep k reports to `manager_⌈k/6⌉` |
//! | `created_date` | uniform over the `history_days` (default 730) up to the as-of date; never after it |
//! | `closed_date` | the close date of a won or lost deal; blank while open |
//! | `stage` | `Qualified`, `Demo`, `Proposal` or `Negotiation` while open; `Closed Won` / `Closed Lost` after |
//! | `amount` | a whole number, log-normal around the product's median: Core 8,000, Pro 25,000, Enterprise 90,000 (log-sd 0.7) |
//! | `outcome` | `Won`, `Lost` or `Open` |
//! | `industry` | SaaS 25%, FinTech 18%, EdTech 15%, HealthTech 15%, Ecommerce 15%, Manufacturing 12% |
//! | `region` | North America 40%, Europe 30%, APAC 20%, LATAM 10% |
//! | `product` | Core 45%, Pro 35%, Enterprise 20% |
//! | `lead_source` | Inbound 30%, Outbound 25%, Referral 15%, Partner 20%, Event 10% |
//! | `contacts` | people engaged, 1–12 (one plus a Poisson count with mean 3.5) |
//! | `discount_pct` | 0.0–40.0, uniform |
//! | `entered_qualified` … `entered_negotiation` | the date the deal entered each stage; blank for stages not (yet) reached |
//! | `sales_cycle_days`, `loss_reason` | known only after close: days from creation to close, and for lost deals one of Price, Competitor, No decision, Timing, Budget |
//!
//! # What decides a deal: the planted effects
//!
//! A deal is won with probability `1 / (1 + e^-x)`, where the log-odds `x` is the sum of:
//!
//! | input | effect on the log-odds of winning |
//! |---|---|
//! | baseline | −0.2 |
//! | industry | SaaS +0.35, FinTech +0.15, EdTech −0.25, HealthTech 0, Ecommerce −0.05, Manufacturing −0.35 |
//! | region | North America +0.1, Europe 0, APAC −0.15, LATAM −0.1 |
//! | product | Core +0.1, Pro 0, Enterprise −0.2 |
//! | product × region | Enterprise in APAC: a further −0.7. An interaction: neither Enterprise nor APAC alone explains it |
//! | lead source | Referral +0.6, Inbound +0.25, Event 0, Partner −0.1, Outbound −0.4 |
//! | amount | −0.5·z², where z = ln(amount / product median) / 0.7. Non-linear: unusually small *and* unusually large deals lose more |
//! | contacts | +0.9·tanh((contacts − 3) / 2). Saturating: engaging more people helps, with diminishing returns |
//! | owner | the rep's skill, drawn once per seed from a normal distribution with sd 0.35 |
//! | discount_pct | nothing. A decoy: a good model gives it no weight |
//! | account, manager | nothing |
//!
//! ## Drift: what changed recently
//!
//! Two effects apply only to deals whose close date falls in a recent window; finding them is
//! the insight engine's job:
//!
//! - **HealthTech** ([`DROPPING_INDUSTRY`]) deals closing in the 91 days up to the as-of date
//!   (as-of − 90 through as-of): −1.1.
//! - **rep_7** ([`SLIPPING_REP`]) deals closing in the 120 days up to the as-of date: −1.3.
//!
//! A deal's close date depends on its outcome (losses take longer), so the drift cannot simply be
//! added before the outcome is drawn. Instead, a would-be win whose close date falls in a window
//! is kept with probability e^δ (δ the window's effect, summed if both apply) and otherwise the
//! deal's outcome and cycle are drawn again. That lowers the log-odds of winning of the deals
//! closing in the window by exactly |δ|, as if δ were part of `x`. Deals still open at the as-of
//! date close after both windows, so their hidden outcomes carry no drift.
//!
//! # Time and stages
//!
//! Deals move through Qualified → Demo → Proposal → Negotiation. The sales cycle is drawn after
//! the outcome: log-normal with median 55 days for wins (log-sd 0.45) and 80 days for losses
//! (log-sd 0.5), times 0.7 for Core, 1.0 for Pro and 1.6 for Enterprise, kept within 7–365 days.
//! Won deals pass through all four stages, most at a steady pace, but 30% pause in one stage for
//! about three times as long as the others. Lost deals stop in Qualified (35%), Demo (30%),
//! Proposal (20%) or Negotiation (15%); 65% of them reach that stage early, within the first
//! 15–45% of the cycle, and then linger until the loss, while 35% move at a steady pace and are
//! lost late. So an open deal that has sat in one stage for a long time is more likely to be
//! lost, which the stage history (but not the outcome columns) reveals; it is a warning sign, not
//! a certainty.
//!
//! A deal whose close date is after the as-of date is written as open: no close date, its stage
//! as of that date, entry dates after it blank, and no cycle length or loss reason. With
//! [`GenerateConfig::keep_truth`] the outcome it would have had is returned in
//! [`GenerateSummary::truth`].
//!
//! # Messy mode
//!
//! With [`GenerateConfig::messy`] the same deals are written the way real exports arrive, for
//! validation tests and the data-quality report. The file starts with a UTF-8 byte-order mark
//! and uses CRLF line endings. About 10% of amounts are written like `$45,000`, 3% of categorical
//! cells carry stray spaces, 2% of industries are spelled differently (`saas`, `Fin Tech`,
//! `E-commerce`: each appears only after the usual spelling, which the reader's normalisation
//! merges them into) and 2% of lead sources are blank. None of that is an error.
//!
//! In addition, about 0.3% of rows (at least one each from 100 deals up) are planted with each of
//! these errors, exactly one per row, and counted in [`GenerateSummary::planted`] under the
//! problem the validator reports:
//!
//! | planted error | reported as |
//! |---|---|
//! | the id of an earlier, valid row | `DuplicateId` |
//! | a closed deal whose close date is 1–30 days before its created date | `ClosedBeforeCreated` |
//! | outcome `Pending review` | `UnknownOutcome` |
//! | a negative amount | `NonPositiveAmount` |
//! | created date `31/31/2023` | `BadDate` |
//! | a blank deal id | `MissingRequired` |
//!
//! A planted row replaces the deal that would have been written there; the others are unchanged,
//! so a messy file holds the clean file's deals.
//!
//! # Determinism
//!
//! Everything is drawn from one ChaCha8 generator seeded with [`GenerateConfig::seed`] (messy
//! noise from a second stream of it), so the same configuration writes the same bytes on the
//! same platform. Sampling uses `ln`, `exp` and `cos` from the platform's maths library, which
//! may round differently on another platform and so change a rare borderline draw there.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};

use chrono::{Days, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::domain::Outcome;
use crate::ingest::ProblemKind;

/// The rep whose recent deals are planted to slip (see the module documentation).
pub const SLIPPING_REP: &str = "rep_7";
/// The industry whose recent deals are planted to drop (see the module documentation).
pub const DROPPING_INDUSTRY: &str = "HealthTech";

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateConfig {
    /// Data rows to write, planted bad rows included.
    pub deals: usize,
    pub seed: u64,
    /// The date the export was taken: nothing is created after it, and deals not closed by then
    /// are open.
    pub as_of: NaiveDate,
    /// Write the file the way messy real exports arrive, with planted bad rows.
    pub messy: bool,
    /// Deals are created over this many days up to `as_of` (0–36,500).
    pub history_days: i64,
    /// Return the hidden final outcome of every deal written as open.
    pub keep_truth: bool,
}

impl GenerateConfig {
    pub fn new(deals: usize, seed: u64, as_of: NaiveDate) -> Self {
        Self { deals, seed, as_of, messy: false, history_days: 730, keep_truth: false }
    }
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerateSummary {
    /// Data rows written, planted bad rows included.
    pub deals: usize,
    /// Outcomes as written, among the rows without a planted error.
    pub won: usize,
    pub lost: usize,
    pub open: usize,
    /// Messy mode: rows planted with an error, by the problem the validator reports for them.
    pub planted: BTreeMap<ProblemKind, usize>,
    /// With `keep_truth`: (deal id, Won or Lost) for every row without a planted error that is
    /// written as open, in file order.
    pub truth: Vec<(String, Outcome)>,
}

/// Writes `config.deals` synthetic deals as CSV to `out`. Fails only if writing fails or the
/// configuration is out of range (`InvalidInput`).
pub fn generate<W: Write>(config: &GenerateConfig, mut out: W) -> io::Result<GenerateSummary> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let world = World::new(config, &mut rng)?;
    // Messy noise comes from its own stream so the deals themselves match the clean file's.
    let mut mess = config.messy.then(|| {
        let mut noise = ChaCha8Rng::seed_from_u64(config.seed);
        noise.set_stream(1);
        Mess::new(config.deals, world.acme_row, noise)
    });

    let terminator = if config.messy {
        out.write_all(UTF8_BOM)?;
        csv::Terminator::CRLF
    } else {
        csv::Terminator::Any(b'\n')
    };
    let csv = csv::WriterBuilder::new().terminator(terminator).from_writer(out);
    let mut out = Out { csv, cell: String::with_capacity(64) };
    out.csv.write_record(COLUMNS)?;

    let id_width = digits(config.deals as u64).max(6);
    let mut summary = GenerateSummary { deals: config.deals, ..GenerateSummary::default() };
    for index in 0..config.deals {
        let deal = world.deal(index, &mut rng);
        let defect = mess.as_mut().and_then(|m| m.defect_at(index));
        out.row(&world, &deal, index, id_width, defect, mess.as_mut())?;

        if let Some(defect) = defect {
            *summary.planted.entry(defect.kind()).or_default() += 1;
            continue;
        }
        if let Some(m) = mess.as_mut() {
            // Later rows may now spell this industry differently; the first spelling stays canonical.
            m.industry_seen[deal.industry] = true;
        }
        match deal.outcome_at(world.as_of) {
            Outcome::Won => summary.won += 1,
            Outcome::Lost => summary.lost += 1,
            Outcome::Open => {
                summary.open += 1;
                if config.keep_truth {
                    let mut id = String::new();
                    push_padded(&mut id, "D", index as u64 + 1, id_width);
                    summary.truth.push((id, deal.final_outcome()));
                }
            }
        }
    }
    out.csv.flush()?;
    Ok(summary)
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

const COLUMNS: [&str; 21] = [
    "deal_id",
    "account",
    "owner",
    "manager",
    "created_date",
    "closed_date",
    "stage",
    "amount",
    "outcome",
    "industry",
    "region",
    "product",
    "lead_source",
    "contacts",
    "discount_pct",
    "entered_qualified",
    "entered_demo",
    "entered_proposal",
    "entered_negotiation",
    "sales_cycle_days",
    "loss_reason",
];

// ---- The outcome model: every number the module documentation promises. ----

/// A categorical value: its name, its share of deals and its effect on the log-odds of winning.
struct Level {
    name: &'static str,
    share: f64,
    effect: f64,
}

const fn level(name: &'static str, share: f64, effect: f64) -> Level {
    Level { name, share, effect }
}

const INDUSTRIES: [Level; 6] = [
    level("SaaS", 0.25, 0.35),
    level("FinTech", 0.18, 0.15),
    level("EdTech", 0.15, -0.25),
    level("HealthTech", 0.15, 0.0),
    level("Ecommerce", 0.15, -0.05),
    level("Manufacturing", 0.12, -0.35),
];
const HEALTHTECH: usize = 3;

/// Other spellings of each industry for messy mode; `normalize_key` maps each to the canonical one.
const INDUSTRY_SPELLINGS: [&[&str]; 6] = [
    &["saas", "SAAS", "Saas"],
    &["Fin Tech", "fintech", "Fin-Tech"],
    &["Ed Tech", "edtech", "Ed-Tech"],
    &["Health Tech", "healthtech", "Health-Tech"],
    &["E-commerce", "eCommerce", "E-Commerce"],
    &["manufacturing", "MANUFACTURING"],
];

const REGIONS: [Level; 4] = [
    level("North America", 0.40, 0.1),
    level("Europe", 0.30, 0.0),
    level("APAC", 0.20, -0.15),
    level("LATAM", 0.10, -0.1),
];
const APAC: usize = 2;

struct Product {
    level: Level,
    /// Median amount.
    median: f64,
    /// Multiplies the sales cycle: bigger products take longer.
    cycle_factor: f64,
}

const PRODUCTS: [Product; 3] = [
    Product { level: level("Core", 0.45, 0.1), median: 8_000.0, cycle_factor: 0.7 },
    Product { level: level("Pro", 0.35, 0.0), median: 25_000.0, cycle_factor: 1.0 },
    Product { level: level("Enterprise", 0.20, -0.2), median: 90_000.0, cycle_factor: 1.6 },
];
const ENTERPRISE: usize = 2;

const LEAD_SOURCES: [Level; 5] = [
    level("Inbound", 0.30, 0.25),
    level("Outbound", 0.25, -0.4),
    level("Referral", 0.15, 0.6),
    level("Partner", 0.20, -0.1),
    level("Event", 0.10, 0.0),
];

const BASE_LOGIT: f64 = -0.2;
const ENTERPRISE_IN_APAC: f64 = -0.7;
const AMOUNT_LOG_SD: f64 = 0.7;
const AMOUNT_CURVATURE: f64 = -0.5;
/// Amounts are kept within these bounds so no clean row trips the validator's ceiling.
const AMOUNT_RANGE: (f64, f64) = (100.0, 5_000_000.0);
const CONTACTS_MEAN_EXTRA: f64 = 3.5;
const CONTACTS_MAX: u32 = 12;
const CONTACTS_GAIN: f64 = 0.9;
const REP_SKILL_SD: f64 = 0.35;
/// Spread of the reps' book sizes (log-normal weights).
const REP_BOOK_SD: f64 = 0.5;
const DEALS_PER_REP: usize = 250;
const REPS_PER_MANAGER: usize = 6;

/// A recent change: deals closing in the `days` up to the as-of date get `effect` on the log-odds.
struct Drift {
    days: i64,
    effect: f64,
}

const INDUSTRY_DRIFT: Drift = Drift { days: 91, effect: -1.1 };
const REP_DRIFT: Drift = Drift { days: 120, effect: -1.3 };
/// `SLIPPING_REP` is `rep_{SLIPPING_REP_INDEX + 1}`.
const SLIPPING_REP_INDEX: usize = 6;

struct Cycle {
    median: f64,
    log_sd: f64,
}

const WON_CYCLE: Cycle = Cycle { median: 55.0, log_sd: 0.45 };
const LOST_CYCLE: Cycle = Cycle { median: 80.0, log_sd: 0.5 };
const CYCLE_RANGE: (i64, i64) = (7, 365);

const STAGES: [&str; 4] = ["Qualified", "Demo", "Proposal", "Negotiation"];
/// Where lost deals stop: the probability of each stage being the last one reached.
const LOST_LAST_STAGE: [f64; 4] = [0.35, 0.30, 0.20, 0.15];
/// Stalling lost deals reach their last stage within this share of the cycle, then stall.
const LOST_ACTIVE_SHARE: (f64, f64) = (0.15, 0.45);
/// Share of lost deals that move at a steady pace and are lost late instead of stalling.
const LOST_STEADY_SHARE: f64 = 0.35;
/// Share of won deals that pause in one stage for about three times as long as the others.
const WON_PAUSE_SHARE: f64 = 0.3;
const LOSS_REASONS: [(&str, f64); 5] =
    [("Price", 0.25), ("Competitor", 0.25), ("No decision", 0.25), ("Timing", 0.15), ("Budget", 0.10)];

/// From this many deals up, "Acme Corp" exists with an open deal (the demo asks about it).
const ACME_MIN_DEALS: usize = 50;
const ACME: &str = "Acme Corp";
/// Acme's showcase deal was created this many days before the as-of date (or at the start of a
/// shorter history) and is still open then, so the demo has a deal with some history to score.
const ACME_DEAL_AGE_DAYS: i64 = 45;

const MAX_HISTORY_DAYS: i64 = 36_500;

// ---- Account names. ----

// "Blue" + "peak" + " " + "Logistics" + " " + "Inc". No head is "Acme", so "Acme Corp" is unique.
const NAME_HEADS: [&str; 32] = [
    "North", "Blue", "Silver", "Iron", "Bright", "Red", "Green", "Stone", "Sun", "Star", "Oak", "Pine", "Cedar",
    "Maple", "River", "Lake", "High", "Clear", "Swift", "Gold", "Summit", "Harbor", "Cloud", "Frost", "Wild", "East",
    "West", "South", "Crystal", "Eagle", "Falcon", "Copper",
];
const NAME_TAILS: [&str; 32] = [
    "wind", "peak", "line", "wood", "water", "field", "gate", "bridge", "brook", "crest", "ridge", "view", "point",
    "haven", "vale", "ford", "mark", "well", "spring", "light", "path", "shore", "port", "forge", "works", "wave",
    "hill", "dale", "bay", "rock", "leaf", "side",
];
const NAME_TRADES: [&str; 48] = [
    "Logistics",
    "Analytics",
    "Foods",
    "Health",
    "Software",
    "Energy",
    "Capital",
    "Robotics",
    "Media",
    "Networks",
    "Pharma",
    "Retail",
    "Motors",
    "Textiles",
    "Systems",
    "Dynamics",
    "Solutions",
    "Technologies",
    "Consulting",
    "Insurance",
    "Payments",
    "Learning",
    "Security",
    "Biotech",
    "Freight",
    "Devices",
    "Materials",
    "Aerospace",
    "Telecom",
    "Apparel",
    "Brewing",
    "Medical",
    "Finance",
    "Marine",
    "Mining",
    "Chemicals",
    "Interactive",
    "Digital",
    "Data",
    "Hosting",
    "Instruments",
    "Electronics",
    "Outfitters",
    "Studios",
    "Supply",
    "Components",
    "Farms",
    "Publishing",
];
const NAME_SUFFIXES: [&str; 16] = [
    "", "Inc", "Ltd", "Group", "Corp", "LLC", "GmbH", "Holdings", "Partners", "Co", "AG", "PLC", "SA", "BV", "Pty Ltd",
    "Labs",
];
const NAME_COUNT: u64 = (NAME_HEADS.len() * NAME_TAILS.len() * NAME_TRADES.len() * NAME_SUFFIXES.len()) as u64;
/// Coprime with `NAME_COUNT` (= 2^18 · 3), so stepping by it visits every name once and
/// neighbouring accounts get unrelated names.
const NAME_STRIDE: u64 = 104_729;
const DEALS_PER_ACCOUNT: usize = 3;

// ---- Messy mode. ----

const MESSY_CURRENCY_SHARE: f64 = 0.10;
const MESSY_PADDING_SHARE: f64 = 0.03;
const MESSY_SPELLING_SHARE: f64 = 0.02;
const MESSY_BLANK_LEAD_SHARE: f64 = 0.02;
const PLANTED_SHARE: f64 = 0.003;
const PLANTED_MIN_DEALS: usize = 100;
const BAD_DATE: &str = "31/31/2023";
const UNKNOWN_OUTCOME: &str = "Pending review";

/// The fixed parts of a generated world: reps, accounts and the calendar.
struct World {
    deals: usize,
    /// The as-of date as a day number (days since `start`, the first possible created date).
    as_of: i64,
    rep_books: Vec<f64>,
    rep_skills: Vec<f64>,
    /// Each account's (industry, region): fixed per account, as in a real CRM.
    accounts: Vec<(u8, u8)>,
    name_offset: u64,
    /// The row holding Acme's open showcase deal; `None` below 50 deals, where there is no Acme.
    acme_row: Option<usize>,
    calendar: Calendar,
}

impl World {
    fn new(config: &GenerateConfig, rng: &mut ChaCha8Rng) -> io::Result<Self> {
        if !(0..=MAX_HISTORY_DAYS).contains(&config.history_days) {
            return Err(invalid(format!(
                "history_days must be within 0–{MAX_HISTORY_DAYS}, not {}",
                config.history_days
            )));
        }
        let history = config.history_days;
        let start = config
            .as_of
            .checked_sub_days(Days::new(history as u64))
            .ok_or_else(|| invalid("as_of − history_days is before the earliest supported date".into()))?;
        let calendar = Calendar::new(start, history)?;

        let reps = (config.deals / DEALS_PER_REP).clamp(20, 80);
        let mut rep_books: Vec<f64> = (0..reps).map(|_| (REP_BOOK_SD * normal(rng)).exp()).collect();
        // rep_7 carries at least a median-sized book, so its slide has enough deals to show.
        rep_books[SLIPPING_REP_INDEX] = rep_books[SLIPPING_REP_INDEX].max(1.0);
        let rep_skills = (0..reps).map(|_| REP_SKILL_SD * normal(rng)).collect();

        let account_count = (config.deals / DEALS_PER_ACCOUNT).clamp(1, NAME_COUNT as usize);
        let accounts = (0..account_count)
            .map(|_| {
                let industry = pick(rng, &INDUSTRIES, |l| l.share);
                let region = pick(rng, &REGIONS, |l| l.share);
                (industry as u8, region as u8)
            })
            .collect();
        let name_offset = rng.random_range(0..NAME_COUNT);

        Ok(Self {
            deals: config.deals,
            as_of: history,
            rep_books,
            rep_skills,
            accounts,
            name_offset,
            acme_row: (config.deals >= ACME_MIN_DEALS).then(|| acme_row(config.deals, history)),
            calendar,
        })
    }

    fn deal(&self, index: usize, rng: &mut ChaCha8Rng) -> Deal {
        // Stratified: row i is created uniformly within the i-th of `deals` equal slices of the
        // history, so created dates are uniform overall and ids follow creation order.
        let slice = (self.as_of + 1) as f64 / self.deals as f64;
        let mut created = (((index as f64 + rng.random::<f64>()) * slice) as i64).min(self.as_of);
        let mut account = rng.random_range(0..self.accounts.len());
        let showcase = self.acme_row == Some(index);
        if showcase {
            // Its stratum holds this day, so the order of creation is kept.
            account = 0;
            created = (self.as_of - ACME_DEAL_AGE_DAYS).max(0);
        }
        let (industry, region) = self.accounts[account];
        let (industry, region) = (usize::from(industry), usize::from(region));
        let rep = pick(rng, &self.rep_books, |w| *w);
        let product = pick(rng, &PRODUCTS, |p| p.level.share);
        let lead = pick(rng, &LEAD_SOURCES, |l| l.share);
        let median = PRODUCTS[product].median;
        let amount = (median * (AMOUNT_LOG_SD * normal(rng)).exp()).round().clamp(AMOUNT_RANGE.0, AMOUNT_RANGE.1);
        let contacts = (poisson(rng, CONTACTS_MEAN_EXTRA) + 1).min(CONTACTS_MAX);
        let discount_tenths = rng.random_range(0..=400u32);

        let mut logit = BASE_LOGIT
            + INDUSTRIES[industry].effect
            + REGIONS[region].effect
            + PRODUCTS[product].level.effect
            + LEAD_SOURCES[lead].effect
            + self.rep_skills[rep];
        if product == ENTERPRISE && region == APAC {
            logit += ENTERPRISE_IN_APAC;
        }
        // z from the amount as written, so the effect can be recomputed from the file.
        let z = (amount / median).ln() / AMOUNT_LOG_SD;
        logit += AMOUNT_CURVATURE * z * z;
        logit += CONTACTS_GAIN * ((f64::from(contacts) - 3.0) / 2.0).tanh();
        let p_win = 1.0 / (1.0 + (-logit).exp());

        // The drift depends on the close date, which depends on the outcome: a would-be win in a
        // drift window survives with probability e^δ, else both are drawn again (see the module
        // documentation). Each round accepts with probability at least e^(−1.1 − 1.3) ≈ 9%.
        // Acme's showcase deal is drawn given that it is still open at 45 days, which at least a
        // third of draws are.
        let (won, cycle) = loop {
            let won = rng.random::<f64>() < p_win;
            let cycle = draw_cycle(rng, won, product);
            if showcase && created + cycle <= self.as_of {
                continue;
            }
            let drift = self.drift(industry, rep, created + cycle);
            if !won || drift >= 0.0 || rng.random::<f64>() < drift.exp() {
                break (won, cycle);
            }
        };
        let close = created + cycle;

        let reached = if won { STAGES.len() - 1 } else { pick(rng, &LOST_LAST_STAGE, |p| *p) };
        // Time in each stage reached, as shares of the cycle. Most wins move at a steady pace,
        // but some pause in one stage; most losses cover their stages early and then stall until
        // the loss, but some move steadily and are lost late (to a competitor, say). So a long
        // stall is a warning sign, not a verdict.
        let mut weights = [0.0f64; 4];
        let steady = won || rng.random::<f64>() < LOST_STEADY_SHARE;
        if steady {
            for w in &mut weights[..=reached] {
                *w = 1.0 + rng.random_range(-0.35..0.35);
            }
            if won && rng.random::<f64>() < WON_PAUSE_SHARE {
                weights[rng.random_range(0..=reached)] *= 3.0;
            }
        } else {
            let active = rng.random_range(LOST_ACTIVE_SHARE.0..LOST_ACTIVE_SHARE.1);
            for w in &mut weights[..reached] {
                *w = active * (1.0 + rng.random_range(-0.3..0.3)) / reached.max(1) as f64;
            }
            weights[reached] = (1.0 - weights[..reached].iter().sum::<f64>()).max(0.05);
        }
        let total: f64 = weights[..=reached].iter().sum();
        let mut entered = [created; 4];
        let mut elapsed = 0.0;
        for k in 1..=reached {
            elapsed += weights[k - 1] / total;
            let day = created + (elapsed * cycle as f64).round() as i64;
            // Strictly increasing, and room left for each later stage before the close.
            entered[k] = day.max(entered[k - 1] + 1).min(close - (STAGES.len() - k) as i64);
        }
        let loss_reason = if won { 0 } else { pick(rng, &LOSS_REASONS, |r| r.1) };

        Deal {
            created,
            close,
            won,
            account,
            rep,
            industry,
            region,
            product,
            lead,
            amount: amount as u64,
            contacts,
            discount_tenths,
            reached,
            entered,
            loss_reason,
        }
    }

    /// The drift effect on a deal closing on day `close` (0 outside the windows).
    fn drift(&self, industry: usize, rep: usize, close: i64) -> f64 {
        let within = |d: &Drift| close <= self.as_of && close > self.as_of - d.days;
        let mut effect = 0.0;
        if industry == HEALTHTECH && within(&INDUSTRY_DRIFT) {
            effect += INDUSTRY_DRIFT.effect;
        }
        if rep == SLIPPING_REP_INDEX && within(&REP_DRIFT) {
            effect += REP_DRIFT.effect;
        }
        effect
    }

    fn push_account_name(&self, account: usize, s: &mut String) {
        if self.acme_row.is_some() && account == 0 {
            s.push_str(ACME);
            return;
        }
        let mut n = (account as u64 * NAME_STRIDE + self.name_offset) % NAME_COUNT;
        let mut next = |len: usize| {
            let i = (n % len as u64) as usize;
            n /= len as u64;
            i
        };
        let (head, tail, trade, suffix) =
            (next(NAME_HEADS.len()), next(NAME_TAILS.len()), next(NAME_TRADES.len()), next(NAME_SUFFIXES.len()));
        s.push_str(NAME_HEADS[head]);
        s.push_str(NAME_TAILS[tail]);
        s.push(' ');
        s.push_str(NAME_TRADES[trade]);
        if !NAME_SUFFIXES[suffix].is_empty() {
            s.push(' ');
            s.push_str(NAME_SUFFIXES[suffix]);
        }
    }
}

/// The row whose slice of the history holds the day `ACME_DEAL_AGE_DAYS` before the as-of date.
fn acme_row(deals: usize, history: i64) -> usize {
    let day = (history - ACME_DEAL_AGE_DAYS).max(0);
    ((day as f64 * deals as f64 / (history + 1) as f64) as usize).min(deals - 1)
}

fn draw_cycle(rng: &mut ChaCha8Rng, won: bool, product: usize) -> i64 {
    let c = if won { WON_CYCLE } else { LOST_CYCLE };
    let days = c.median * PRODUCTS[product].cycle_factor * (c.log_sd * normal(rng)).exp();
    (days.round() as i64).clamp(CYCLE_RANGE.0, CYCLE_RANGE.1)
}

/// One drawn deal; days are counted from the first possible created date.
struct Deal {
    created: i64,
    /// The would-be close date; after the as-of date for open deals.
    close: i64,
    won: bool,
    account: usize,
    rep: usize,
    industry: usize,
    region: usize,
    product: usize,
    lead: usize,
    amount: u64,
    contacts: u32,
    discount_tenths: u32,
    /// The last stage reached by the close (always Negotiation for wins).
    reached: usize,
    /// Entry date of each stage; meaningful up to `reached`.
    entered: [i64; 4],
    loss_reason: usize,
}

impl Deal {
    fn final_outcome(&self) -> Outcome {
        if self.won { Outcome::Won } else { Outcome::Lost }
    }

    fn outcome_at(&self, as_of: i64) -> Outcome {
        if self.close <= as_of { self.final_outcome() } else { Outcome::Open }
    }

    /// The stage an open deal is in on `day`.
    fn stage_on(&self, day: i64) -> usize {
        (1..=self.reached).take_while(|&k| self.entered[k] <= day).count()
    }
}

/// ISO date strings for every day the file can mention, formatted once.
struct Calendar {
    text: String,
}

/// The calendar reaches this far before the history, for planted close-before-created dates.
const CALENDAR_MARGIN: i64 = 64;
const DATE_LEN: usize = 10;

impl Calendar {
    fn new(start: NaiveDate, days: i64) -> io::Result<Self> {
        let first = start
            .checked_sub_days(Days::new(CALENDAR_MARGIN as u64))
            .ok_or_else(|| invalid("as_of − history_days is before the earliest supported date".into()))?;
        let count = (days + CALENDAR_MARGIN + 1) as usize;
        let mut text = String::with_capacity(count * DATE_LEN);
        for date in first.iter_days().take(count) {
            let iso = date.format("%Y-%m-%d").to_string();
            if iso.len() != DATE_LEN {
                return Err(invalid(format!("dates must fall within years 0000–9999, not {iso}")));
            }
            text.push_str(&iso);
        }
        Ok(Self { text })
    }

    fn date(&self, day: i64) -> &str {
        let at = (day + CALENDAR_MARGIN) as usize * DATE_LEN;
        &self.text[at..at + DATE_LEN]
    }
}

/// A planted error (messy mode), one per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Defect {
    /// Repeats the id of this earlier, valid row.
    RepeatedId {
        of: usize,
    },
    /// Closed this many days before it was created.
    ClosedBeforeCreated {
        days: i64,
    },
    UnknownOutcome,
    NegativeAmount,
    BadCreatedDate,
    BlankId,
}

impl Defect {
    fn kind(self) -> ProblemKind {
        match self {
            Defect::RepeatedId { .. } => ProblemKind::DuplicateId,
            Defect::ClosedBeforeCreated { .. } => ProblemKind::ClosedBeforeCreated,
            Defect::UnknownOutcome => ProblemKind::UnknownOutcome,
            Defect::NegativeAmount => ProblemKind::NonPositiveAmount,
            Defect::BadCreatedDate => ProblemKind::BadDate,
            Defect::BlankId => ProblemKind::MissingRequired,
        }
    }
}

/// Messy-mode state: its own random stream, the planted rows and which industries have appeared.
struct Mess {
    rng: ChaCha8Rng,
    /// (row, defect), by row.
    defects: Vec<(usize, Defect)>,
    next_defect: usize,
    industry_seen: [bool; 6],
}

impl Mess {
    fn new(deals: usize, acme_row: Option<usize>, mut rng: ChaCha8Rng) -> Self {
        let per_kind =
            if deals >= PLANTED_MIN_DEALS { ((deals as f64 * PLANTED_SHARE).round() as usize).max(1) } else { 0 };
        // Not the first row, which has no earlier row to repeat, nor Acme's showcase deal.
        let mut rows = HashSet::new();
        let mut picked = Vec::with_capacity(per_kind * 6);
        while picked.len() < per_kind * 6 {
            let row = rng.random_range(1..deals);
            if Some(row) != acme_row && rows.insert(row) {
                picked.push(row);
            }
        }
        let mut defects: Vec<(usize, Defect)> = picked
            .chunks(per_kind.max(1))
            .zip(0..)
            .flat_map(|(chunk, kind)| chunk.iter().map(move |&row| (row, kind)))
            .map(|(row, kind)| {
                let defect = match kind {
                    0 => {
                        // Row 0 is never planted, so this finds a valid earlier row.
                        let mut of = rng.random_range(0..row);
                        while rows.contains(&of) {
                            of = rng.random_range(0..row);
                        }
                        Defect::RepeatedId { of }
                    }
                    1 => Defect::ClosedBeforeCreated { days: rng.random_range(1..=30) },
                    2 => Defect::UnknownOutcome,
                    3 => Defect::NegativeAmount,
                    4 => Defect::BadCreatedDate,
                    _ => Defect::BlankId,
                };
                (row, defect)
            })
            .collect();
        defects.sort_unstable_by_key(|&(row, _)| row);
        Self { rng, defects, next_defect: 0, industry_seen: [false; 6] }
    }

    fn defect_at(&mut self, row: usize) -> Option<Defect> {
        let &(at, defect) = self.defects.get(self.next_defect)?;
        (at == row).then(|| {
            self.next_defect += 1;
            defect
        })
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random::<f64>() < p
    }

    /// Another spelling of an industry, sometimes, once its usual spelling has appeared (a
    /// vocabulary shows the first spelling it meets).
    fn respelling(&mut self, industry: usize) -> Option<&'static str> {
        if !self.industry_seen[industry] || !self.chance(MESSY_SPELLING_SHARE) {
            return None;
        }
        let options = INDUSTRY_SPELLINGS[industry];
        Some(options[self.rng.random_range(0..options.len())])
    }

    /// Stray spaces (before, after) for a categorical cell.
    fn padding(&mut self) -> (usize, usize) {
        if !self.chance(MESSY_PADDING_SHARE) {
            return (0, 0);
        }
        match self.rng.random_range(0..3) {
            0 => (self.rng.random_range(1..=2), 0),
            1 => (0, self.rng.random_range(1..=3)),
            _ => (1, 1),
        }
    }
}

/// The CSV writer and a reusable cell buffer.
struct Out<W: Write> {
    csv: csv::Writer<W>,
    cell: String,
}

impl<W: Write> Out<W> {
    fn field(&mut self, value: &str) -> io::Result<()> {
        Ok(self.csv.write_field(value)?)
    }

    /// Writes the cell `fill` builds, with messy-mode stray spaces when drawn.
    fn categorical(&mut self, mess: &mut Option<&mut Mess>, fill: impl FnOnce(&mut String)) -> io::Result<()> {
        let (before, after) = mess.as_mut().map_or((0, 0), |m| m.padding());
        self.cell.clear();
        self.cell.extend(std::iter::repeat_n(' ', before));
        fill(&mut self.cell);
        self.cell.extend(std::iter::repeat_n(' ', after));
        Ok(self.csv.write_field(&self.cell)?)
    }

    fn row(
        &mut self,
        world: &World,
        deal: &Deal,
        index: usize,
        id_width: usize,
        defect: Option<Defect>,
        mut mess: Option<&mut Mess>,
    ) -> io::Result<()> {
        let cal = &world.calendar;
        let as_of = world.as_of;
        let (closed_day, written_closed) = match defect {
            Some(Defect::ClosedBeforeCreated { days }) => (deal.created - days, true),
            _ => (deal.close, deal.close <= as_of),
        };

        self.cell.clear();
        let id = match defect {
            Some(Defect::BlankId) => None,
            Some(Defect::RepeatedId { of }) => Some(of),
            _ => Some(index),
        };
        if let Some(id) = id {
            push_padded(&mut self.cell, "D", id as u64 + 1, id_width);
        }
        self.csv.write_field(&self.cell)?;

        self.cell.clear();
        world.push_account_name(deal.account, &mut self.cell);
        self.csv.write_field(&self.cell)?;
        let rep = deal.rep as u64 + 1;
        self.categorical(&mut mess, |s| push_padded(s, "rep_", rep, 0))?;
        let manager = rep.div_ceil(REPS_PER_MANAGER as u64);
        self.categorical(&mut mess, |s| push_padded(s, "manager_", manager, 0))?;

        if defect == Some(Defect::BadCreatedDate) {
            self.field(BAD_DATE)?;
        } else {
            self.field(cal.date(deal.created))?;
        }
        self.field(if written_closed { cal.date(closed_day) } else { "" })?;
        let stage = match (written_closed, deal.won) {
            (true, true) => "Closed Won",
            (true, false) => "Closed Lost",
            (false, _) => STAGES[deal.stage_on(as_of)],
        };
        self.categorical(&mut mess, |s| s.push_str(stage))?;

        self.cell.clear();
        if defect == Some(Defect::NegativeAmount) {
            self.cell.push('-');
            push_uint(&mut self.cell, deal.amount);
        } else if mess.as_mut().is_some_and(|m| m.chance(MESSY_CURRENCY_SHARE)) {
            self.cell.push('$');
            push_thousands(&mut self.cell, deal.amount);
        } else {
            push_uint(&mut self.cell, deal.amount);
        }
        self.csv.write_field(&self.cell)?;

        let outcome = match (defect, written_closed, deal.won) {
            (Some(Defect::UnknownOutcome), _, _) => UNKNOWN_OUTCOME,
            (_, false, _) => "Open",
            (_, true, true) => "Won",
            (_, true, false) => "Lost",
        };
        self.field(outcome)?;

        let industry = deal.industry;
        let spelling = mess.as_mut().and_then(|m| m.respelling(industry)).unwrap_or(INDUSTRIES[industry].name);
        self.categorical(&mut mess, |s| s.push_str(spelling))?;
        self.categorical(&mut mess, |s| s.push_str(REGIONS[deal.region].name))?;
        self.categorical(&mut mess, |s| s.push_str(PRODUCTS[deal.product].level.name))?;
        if mess.as_mut().is_some_and(|m| m.chance(MESSY_BLANK_LEAD_SHARE)) {
            self.field("")?;
        } else {
            self.categorical(&mut mess, |s| s.push_str(LEAD_SOURCES[deal.lead].name))?;
        }

        self.cell.clear();
        push_uint(&mut self.cell, u64::from(deal.contacts));
        self.csv.write_field(&self.cell)?;
        self.cell.clear();
        push_uint(&mut self.cell, u64::from(deal.discount_tenths / 10));
        self.cell.push('.');
        push_uint(&mut self.cell, u64::from(deal.discount_tenths % 10));
        self.csv.write_field(&self.cell)?;

        for k in 0..STAGES.len() {
            let known = k <= deal.reached && deal.entered[k] <= as_of;
            self.field(if known { cal.date(deal.entered[k]) } else { "" })?;
        }

        if written_closed {
            self.cell.clear();
            let cycle = closed_day - deal.created;
            if cycle < 0 {
                self.cell.push('-');
            }
            push_uint(&mut self.cell, cycle.unsigned_abs());
            self.csv.write_field(&self.cell)?;
            self.field(if deal.won { "" } else { LOSS_REASONS[deal.loss_reason].0 })?;
        } else {
            self.field("")?;
            self.field("")?;
        }
        Ok(self.csv.write_record(None::<&[u8]>)?)
    }
}

// ---- Sampling. ----

/// Index of an item drawn with probability proportional to `weight`.
fn pick<T>(rng: &mut ChaCha8Rng, items: &[T], weight: impl Fn(&T) -> f64) -> usize {
    let total: f64 = items.iter().map(&weight).sum();
    let mut u = rng.random::<f64>() * total;
    for (i, item) in items.iter().enumerate() {
        u -= weight(item);
        if u < 0.0 {
            return i;
        }
    }
    // Only reachable through rounding in the subtraction.
    items.len() - 1
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // 1 − u keeps the logarithm's argument in (0, 1].
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A Poisson draw (Knuth's product of uniforms; fine for small means).
fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u32 {
    let limit = (-mean).exp();
    let mut k = 0;
    let mut product = rng.random::<f64>();
    while product > limit {
        k += 1;
        product *= rng.random::<f64>();
    }
    k
}

// ---- Formatting without per-cell allocation. ----

fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

fn push_uint(s: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    s.extend(buf[i..].iter().map(|&b| char::from(b)));
}

/// `prefix` then `n`, zero-padded to `width` digits.
fn push_padded(s: &mut String, prefix: &str, n: u64, width: usize) {
    s.push_str(prefix);
    s.extend(std::iter::repeat_n('0', width.saturating_sub(digits(n))));
    push_uint(s, n);
}

/// `n` with comma thousands separators: 45000 → `45,000`.
fn push_thousands(s: &mut String, n: u64) {
    let start = s.len();
    push_uint(s, n);
    let len = s.len() - start;
    for sep in (1..len).rev().filter(|i| (len - i).is_multiple_of(3)) {
        s.insert(start + sep, ',');
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::error::Error;

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
        let mapping = Mapping::from_toml(include_str!("../../bot/mappings/generated.toml"))?;
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
        let names: HashSet<&str> =
            dataset.schema.categorical[industry].vocab.values().iter().map(String::as_str).collect();
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
            summary.truth.iter().any(|(_, o)| *o == Outcome::Won)
                && summary.truth.iter().any(|(_, o)| *o == Outcome::Lost)
        );
        let data = read(&bytes)?.dataset;
        let open: HashSet<&str> =
            data.deals.iter().filter(|d| d.outcome == Outcome::Open).map(|d| d.id.as_str()).collect();
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
        let (cycle_c, reason_c, first_entry) =
            (col("sales_cycle_days")?, col("loss_reason")?, col("entered_qualified")?);
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
                    assert!(
                        last <= as_of() && r[closed_c].is_empty() && r[cycle_c].is_empty() && r[reason_c].is_empty()
                    );
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
            let showcase =
                acme.iter().find(|d| d.outcome == Outcome::Open && d.created == Some(as_of() - Days::new(45)));
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
}
