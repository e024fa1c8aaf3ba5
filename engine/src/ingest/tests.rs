//! Tests of `ingest`.

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
        ("D9,Won,-5,2024-01-01,2024-02-01,r1,SaaS,1", ProblemKind::NonPositiveAmount, "amount", "-5", "greater than 0"),
        ("D9,Won,0,2024-01-01,2024-02-01,r1,SaaS,1", ProblemKind::NonPositiveAmount, "amount", "0", "greater than 0"),
        (
            "D9,Won,\"$12,000,000\",2024-01-01,2024-02-01,r1,SaaS,1",
            ProblemKind::AmountTooLarge,
            "amount",
            "$12,000,000",
            "below",
        ),
        ("D9,Won,1000,31/31/2023,2024-02-01,r1,SaaS,1", ProblemKind::BadDate, "created", "31/31/2023", "not a date"),
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
    let err = ingest("id,outcome\nD1,Won\n".as_bytes(), &mapping, Vec::new(), Context { today: today() }).unwrap_err();
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
