//! The outcome model: every number the module documentation promises (segment effects, the
//! planted interaction and drifts, amounts, contacts, reps, cycles, stages, loss reasons).

/// A categorical value: its name, its share of deals and its effect on the log-odds of winning.
pub(super) struct Level {
    pub(super) name: &'static str,
    pub(super) share: f64,
    pub(super) effect: f64,
}

pub(super) const fn level(name: &'static str, share: f64, effect: f64) -> Level {
    Level { name, share, effect }
}

pub(super) const INDUSTRIES: [Level; 6] = [
    level("SaaS", 0.25, 0.35),
    level("FinTech", 0.18, 0.15),
    level("EdTech", 0.15, -0.25),
    level("HealthTech", 0.15, 0.0),
    level("Ecommerce", 0.15, -0.05),
    level("Manufacturing", 0.12, -0.35),
];
pub(super) const HEALTHTECH: usize = 3;

/// Other spellings of each industry for messy mode; `normalize_key` maps each to the canonical one.
pub(super) const INDUSTRY_SPELLINGS: [&[&str]; 6] = [
    &["saas", "SAAS", "Saas"],
    &["Fin Tech", "fintech", "Fin-Tech"],
    &["Ed Tech", "edtech", "Ed-Tech"],
    &["Health Tech", "healthtech", "Health-Tech"],
    &["E-commerce", "eCommerce", "E-Commerce"],
    &["manufacturing", "MANUFACTURING"],
];

pub(super) const REGIONS: [Level; 4] = [
    level("North America", 0.40, 0.1),
    level("Europe", 0.30, 0.0),
    level("APAC", 0.20, -0.15),
    level("LATAM", 0.10, -0.1),
];
pub(super) const APAC: usize = 2;

pub(super) struct Product {
    pub(super) level: Level,
    /// Median amount.
    pub(super) median: f64,
    /// Multiplies the sales cycle: bigger products take longer.
    pub(super) cycle_factor: f64,
}

pub(super) const PRODUCTS: [Product; 3] = [
    Product { level: level("Core", 0.45, 0.1), median: 8_000.0, cycle_factor: 0.7 },
    Product { level: level("Pro", 0.35, 0.0), median: 25_000.0, cycle_factor: 1.0 },
    Product { level: level("Enterprise", 0.20, -0.2), median: 90_000.0, cycle_factor: 1.6 },
];
pub(super) const ENTERPRISE: usize = 2;

pub(super) const LEAD_SOURCES: [Level; 5] = [
    level("Inbound", 0.30, 0.25),
    level("Outbound", 0.25, -0.4),
    level("Referral", 0.15, 0.6),
    level("Partner", 0.20, -0.1),
    level("Event", 0.10, 0.0),
];

pub(super) const BASE_LOGIT: f64 = -0.2;
pub(super) const ENTERPRISE_IN_APAC: f64 = -0.7;
pub(super) const AMOUNT_LOG_SD: f64 = 0.7;
pub(super) const AMOUNT_CURVATURE: f64 = -0.5;
/// Amounts are kept within these bounds so no clean row trips the validator's ceiling.
pub(super) const AMOUNT_RANGE: (f64, f64) = (100.0, 5_000_000.0);
pub(super) const CONTACTS_MEAN_EXTRA: f64 = 3.5;
pub(super) const CONTACTS_MAX: u32 = 12;
pub(super) const CONTACTS_GAIN: f64 = 0.9;
pub(super) const REP_SKILL_SD: f64 = 0.35;
/// Spread of the reps' book sizes (log-normal weights).
pub(super) const REP_BOOK_SD: f64 = 0.5;
pub(super) const DEALS_PER_REP: usize = 250;
pub(super) const REPS_PER_MANAGER: usize = 6;

/// A recent change: deals closing in the `days` up to the as-of date get `effect` on the log-odds.
pub(super) struct Drift {
    pub(super) days: i64,
    pub(super) effect: f64,
}

pub(super) const INDUSTRY_DRIFT: Drift = Drift { days: 91, effect: -1.1 };
pub(super) const REP_DRIFT: Drift = Drift { days: 120, effect: -1.3 };
/// `SLIPPING_REP` is `rep_{SLIPPING_REP_INDEX + 1}`.
pub(super) const SLIPPING_REP_INDEX: usize = 6;

pub(super) struct Cycle {
    pub(super) median: f64,
    pub(super) log_sd: f64,
}

pub(super) const WON_CYCLE: Cycle = Cycle { median: 55.0, log_sd: 0.45 };
pub(super) const LOST_CYCLE: Cycle = Cycle { median: 80.0, log_sd: 0.5 };
pub(super) const CYCLE_RANGE: (i64, i64) = (7, 365);

pub(super) const STAGES: [&str; 4] = ["Qualified", "Demo", "Proposal", "Negotiation"];
/// Where lost deals stop: the probability of each stage being the last one reached.
pub(super) const LOST_LAST_STAGE: [f64; 4] = [0.35, 0.30, 0.20, 0.15];
/// Stalling lost deals reach their last stage within this share of the cycle, then stall.
pub(super) const LOST_ACTIVE_SHARE: (f64, f64) = (0.15, 0.45);
/// Share of lost deals that move at a steady pace and are lost late instead of stalling.
pub(super) const LOST_STEADY_SHARE: f64 = 0.35;
/// Share of won deals that pause in one stage for about three times as long as the others.
pub(super) const WON_PAUSE_SHARE: f64 = 0.3;
pub(super) const LOSS_REASONS: [(&str, f64); 5] =
    [("Price", 0.25), ("Competitor", 0.25), ("No decision", 0.25), ("Timing", 0.15), ("Budget", 0.10)];

/// From this many deals up, "Acme Corp" exists with an open deal (the demo asks about it).
pub(super) const ACME_MIN_DEALS: usize = 50;
pub(super) const ACME: &str = "Acme Corp";
/// Acme's showcase deal was created this many days before the as-of date (or at the start of a
/// shorter history) and is still open then, so the demo has a deal with some history to score.
pub(super) const ACME_DEAL_AGE_DAYS: i64 = 45;

pub(super) const MAX_HISTORY_DAYS: i64 = 36_500;
