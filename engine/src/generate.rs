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

use std::collections::BTreeMap;
use std::io::{self, Write};

use chrono::{Days, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::domain::Outcome;
use crate::ingest::ProblemKind;

mod draw;
mod messy;
mod model;
mod names;
mod write;

use draw::{normal, pick, poisson};
use messy::{BAD_DATE, Defect, MESSY_BLANK_LEAD_SHARE, MESSY_CURRENCY_SHARE, Mess, UNKNOWN_OUTCOME};
use model::{
    ACME, ACME_DEAL_AGE_DAYS, ACME_MIN_DEALS, AMOUNT_CURVATURE, AMOUNT_LOG_SD, AMOUNT_RANGE, APAC, BASE_LOGIT,
    CONTACTS_GAIN, CONTACTS_MAX, CONTACTS_MEAN_EXTRA, CYCLE_RANGE, DEALS_PER_REP, Drift, ENTERPRISE,
    ENTERPRISE_IN_APAC, HEALTHTECH, INDUSTRIES, INDUSTRY_DRIFT, LEAD_SOURCES, LOSS_REASONS, LOST_ACTIVE_SHARE,
    LOST_CYCLE, LOST_LAST_STAGE, LOST_STEADY_SHARE, MAX_HISTORY_DAYS, PRODUCTS, REGIONS, REP_BOOK_SD, REP_DRIFT,
    REP_SKILL_SD, REPS_PER_MANAGER, SLIPPING_REP_INDEX, STAGES, WON_CYCLE, WON_PAUSE_SHARE,
};
use names::{DEALS_PER_ACCOUNT, NAME_COUNT, NAME_HEADS, NAME_STRIDE, NAME_SUFFIXES, NAME_TAILS, NAME_TRADES};
use write::{Calendar, digits, invalid, push_padded, push_thousands, push_uint};

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

#[cfg(test)]
mod tests;
