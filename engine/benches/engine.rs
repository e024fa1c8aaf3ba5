//! Speed of the engine's hot paths (issue bars: score and explain ≥ 1M deals/s on one core,
//! fit the additive model on 100K closed deals in under 5 s, every insight rule over 100K deals
//! and 1,000 segments in under 200 ms).
//!
//! `cargo bench -p engine`. Data comes from the generator, so the run needs nothing else.

use std::hint::black_box;

use chrono::NaiveDate;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use engine::asof::View;
use engine::dataset::Dataset;
use engine::generate::{GenerateConfig, generate};
use engine::ingest::{Context, ingest};
use engine::mapping::Mapping;
use engine::model::{TrainConfig, TrainedModel};
use engine::score::Scorer;
use engine::texts::Texts;

const MAPPING: &str = include_str!("../../bot/mappings/generated.toml");

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 30).expect("date")
}

fn csv(deals: usize) -> Vec<u8> {
    let mut out = Vec::new();
    generate(&GenerateConfig::new(deals, 7, as_of()), &mut out).expect("generate");
    out
}

fn dataset(csv: &[u8]) -> Dataset {
    let mapping = Mapping::from_toml(MAPPING).expect("mapping");
    ingest(csv, &mapping, Vec::new(), Context { today: as_of() }).expect("ingest").dataset
}

fn texts() -> Texts {
    Texts::from_toml(include_str!("../../prompts/factors.toml"), include_str!("../../prompts/recommendations.toml"))
        .expect("texts")
}

fn trained(data: &Dataset, view: &View) -> TrainedModel {
    TrainedModel::train(data, &view.closed, Some(as_of()), &TrainConfig { threads: 2, ..TrainConfig::default() })
        .expect("train")
}

fn scoring(c: &mut Criterion) {
    let data = dataset(&csv(100_000));
    let view = View::new(&data, Some(as_of()));
    let model = trained(&data, &view);
    let texts = texts();
    let scorer = Scorer::new(&model, &data, &view, &texts);
    let mut work = scorer.work();
    let mut group = c.benchmark_group("score");
    // Every one of the 100K deals scored as if open on the as-of date: features, calibrated
    // probability and the exact per-factor impacts, one core.
    group.throughput(Throughput::Elements(data.deals.len() as u64));
    group.bench_function("score_and_explain_100k", |b| {
        b.iter(|| {
            let mut total = 0.0;
            for deal in &data.deals {
                total += scorer.quick(deal, &mut work).p_loss;
            }
            black_box(total)
        });
    });
    // The full risk card: sentences, actions and similar won deals, for one in a hundred deals.
    let sample: Vec<usize> = view.open.iter().copied().step_by(10).take(1_000).collect();
    group.throughput(Throughput::Elements(sample.len() as u64));
    group.bench_function("risk_card_1k", |b| {
        b.iter(|| {
            for &i in &sample {
                black_box(scorer.score(i, &mut work));
            }
        });
    });
    group.finish();
}

fn fitting(c: &mut Criterion) {
    // 115K generated deals leave about 100K closed on the as-of date.
    let data = dataset(&csv(115_000));
    let view = View::new(&data, Some(as_of()));
    let mut group = c.benchmark_group("fit");
    group.sample_size(10);
    for threads in [1, 2] {
        group.bench_with_input(BenchmarkId::new("additive_100k_closed", threads), &threads, |b, &threads| {
            b.iter(|| {
                let config = TrainConfig { threads, ..TrainConfig::default() };
                black_box(TrainedModel::train(&data, &view.closed, Some(as_of()), &config).expect("train"))
            });
        });
    }
    group.finish();
}

fn reading(c: &mut Criterion) {
    let bytes = csv(100_000);
    let mapping = Mapping::from_toml(MAPPING).expect("mapping");
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("validate_100k_csv", |b| {
        b.iter(|| black_box(ingest(&bytes[..], &mapping, Vec::new(), Context { today: as_of() }).expect("ingest")));
    });
    group.bench_function("generate_1m", |b| {
        b.iter(|| black_box(generate(&GenerateConfig::new(1_000_000, 1, as_of()), std::io::sink()).expect("generate")));
    });
    group.finish();
}

/// Every insight rule over 100K deals (issue bar: under 200 ms with 1,000 segments). The
/// mapping adds the manager and the rep as segment dimensions, so that the single segments and
/// pairs number in the thousands.
fn insights(c: &mut Criterion) {
    let mapping = MAPPING.replace("[segments]\n", "[segments]\nmanager = \"manager\"\nrep = \"owner\"\n");
    let mapping = Mapping::from_toml(&mapping).expect("mapping");
    let data = ingest(&csv(100_000)[..], &mapping, Vec::new(), Context { today: as_of() }).expect("ingest").dataset;
    let view = View::new(&data, Some(as_of()));
    let model = trained(&data, &view);
    let texts = texts();
    let scorer = Scorer::new(&model, &data, &view, &texts);
    let mut work = scorer.work();
    let mut p = vec![f64::NAN; data.deals.len()];
    for &i in &view.open {
        p[i] = scorer.quick(&data.deals[i], &mut work).p_loss;
    }
    let config = engine::insights::InsightConfig::default();
    let found = engine::insights::compute(&data, as_of(), Some(&p), Some(&p), &config);
    eprintln!(
        "insights over {} deals: {} segment comparisons and {} segments against the company tested, {} reps",
        data.deals.len(),
        found.tested.segment_changes,
        found.tested.high_performers,
        found.tested.reps
    );
    c.bench_function("insights_100k", |b| {
        b.iter(|| black_box(engine::insights::compute(&data, as_of(), Some(&p), Some(&p), &config)));
    });
}

criterion_group!(benches, scoring, fitting, reading, insights);
criterion_main!(benches);
