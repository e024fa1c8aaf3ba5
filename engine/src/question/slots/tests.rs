//! Tests of `slots`.

use super::*;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn vocab() -> Vocabulary {
    let mut v = Vocabulary {
        dimensions: vec![
            ("industry".into(), vec!["FinTech".into(), "HealthTech".into(), "Ecommerce".into()]),
            ("region".into(), vec!["North America".into(), "Europe".into(), "APAC".into()]),
            ("lead_source".into(), vec!["Partner".into(), "Referral".into()]),
        ],
        reps: vec!["rep_15".into()],
        ..Vocabulary::default()
    };
    v.deal_ids.insert("d000042".into(), "D000042".into());
    v.names.insert("pineline".into(), vec!["D000042".into()]);
    v.names.insert("harborline energy partners".into(), vec!["D000007".into()]);
    v.longest_name = 3;
    v
}

fn period(q: &str, as_of: &str) -> Option<(String, String)> {
    read(q, &vocab(), date(as_of)).values.period.map(|p| (p.from.to_string(), p.to.to_string()))
}

fn pair(a: &str, b: &str) -> Option<(String, String)> {
    Some((a.into(), b.into()))
}

#[test]
fn periods_are_calendar_ranges_or_look_back_windows_from_the_as_of_date() {
    assert_eq!(period("win rate this quarter", "2024-02-15"), pair("2024-01-01", "2024-03-31"));
    assert_eq!(period("last qtr", "2024-01-10"), pair("2023-10-01", "2023-12-31"));
    assert_eq!(period("next quarter", "2024-11-30"), pair("2025-01-01", "2025-03-31"));
    assert_eq!(period("deals in Q3", "2024-05-01"), pair("2023-07-01", "2023-09-30"));
    assert_eq!(period("march 2024", "2025-01-01"), pair("2024-03-01", "2024-03-31"));
    assert_eq!(period("in 2023", "2025-01-01"), pair("2023-01-01", "2023-12-31"));
    assert_eq!(period("last year", "2024-03-31"), pair("2023-01-01", "2023-12-31"));
    assert_eq!(period("last 30 days", "2024-03-31"), pair("2024-03-01", "2024-03-31"));
    // Six months back from the 31st of August is the 29th of February in a leap year.
    assert_eq!(period("last 6 months", "2024-08-31"), pair("2024-02-29", "2024-08-31"));
    assert_eq!(period("next month", "2024-12-15"), pair("2025-01-01", "2025-01-31"));
    assert!(read("over the past year", &vocab(), date("2024-03-31")).trailing_period);
    assert!(!read("this year", &vocab(), date("2024-03-31")).trailing_period);
    // "may" is a verb unless it is plainly the month.
    assert_eq!(period("which deals may slip", "2024-06-30"), None);
    assert_eq!(period("won in may", "2024-06-30"), pair("2024-05-01", "2024-05-31"));
}

#[test]
fn money_counts_and_categories_are_read_and_years_are_not_money() {
    let s = read("top 5 critical deals over $50k in 2024", &vocab(), date("2024-06-30"));
    assert_eq!((s.values.limit, s.values.amount_min, s.values.amount_max), (Some(5), Some(50_000.0), None));
    assert_eq!(s.values.risk_category, Some(RiskCategory::Critical));
    let s = read("deals between 10k and 1.5M", &vocab(), date("2024-06-30"));
    assert_eq!((s.values.amount_min, s.values.amount_max), (Some(10_000.0), Some(1_500_000.0)));
    let s = read("under 100,000", &vocab(), date("2024-06-30"));
    assert_eq!(s.values.amount_max, Some(100_000.0));
    let s = read("list medum risk deals", &vocab(), date("2024-06-30"));
    assert_eq!(s.values.risk_category, Some(RiskCategory::Medium), "a typo of a category word");
}

#[test]
fn the_tenants_names_are_found_with_aliases_and_typos_but_not_in_other_words() {
    let s = read("helthtech win rate in N. America for rep 15", &vocab(), date("2024-06-30"));
    assert_eq!(s.values.filters.get("industry").map(String::as_str), Some("HealthTech"));
    assert_eq!(s.values.filters.get("region").map(String::as_str), Some("North America"));
    assert_eq!(s.values.filters.get("rep").map(String::as_str), Some("rep_15"));
    // "healthy" is a word, not a misspelt HealthTech; "show us" is not the USA.
    let s = read("show us if the europe pipeline is healthy", &vocab(), date("2024-06-30"));
    assert_eq!(s.values.filters.len(), 1, "{:?}", s.values.filters);
    // Two values of one dimension compare it.
    let s = read("fintech vs healthtech", &vocab(), date("2024-06-30"));
    assert_eq!((s.values.dimension.as_deref(), s.values.filters.len()), (Some("industry"), 0));
    // An account whose name holds a segment value is the account.
    let s = read("how risky is Harborline Energy Partners", &vocab(), date("2024-06-30"));
    assert_eq!((s.values.deal.as_deref(), s.values.filters.len()), (Some("D000007"), 0));
    // Typos are corrected, but never a tenant's name or an inflection.
    assert_eq!(correct("pipline for pineline", &vocab()), "pipeline for pineline");
    assert_eq!(correct("how long to close", &vocab()), "how long to close");
    assert_eq!(correct("fcst nxt quater", &vocab()), "forecast nxt quarter");
    // A deal id in any case, even one the tenant lacks, and with a possessive.
    assert_eq!(
        read("why is d000042's score high", &vocab(), date("2024-06-30")).values.deal.as_deref(),
        Some("D000042")
    );
    let s = read("risk of D99999", &vocab(), date("2024-06-30"));
    assert_eq!((s.values.deal.as_deref(), s.unknown.as_slice()), (Some("D99999"), ["D99999".to_owned()].as_slice()));
}
