//! Files the CLI reads: mappings (bundled or from disk), prompt texts, and CRM exports with
//! their lookup tables. This is the I/O the engine leaves to its caller.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::NaiveDate;
use engine::ingest::{self, Ingested};
use engine::mapping::Mapping;
use engine::texts::Texts;

/// Mappings shipped in the binary, by name.
pub const BUNDLED_MAPPINGS: [(&str, &str); 4] = [
    ("generated", include_str!("../../mappings/generated.toml")),
    ("skygeni", include_str!("../../mappings/skygeni.toml")),
    ("maven", include_str!("../../mappings/maven.toml")),
    ("salesforce", include_str!("../../mappings/salesforce.toml")),
];

const FACTORS_TOML: &str = include_str!("../../../prompts/factors.toml");
const RECOMMENDATIONS_TOML: &str = include_str!("../../../prompts/recommendations.toml");

/// A set of Tera templates: the bundled `(name, text)` pairs, each replaced by
/// `dir/<name>.tera` where that file exists, parsed once with the message filters; a template
/// that does not parse fails here, at start-up.
pub fn templates(bundled: &[(&str, &str)], dir: Option<&Path>, what: &str) -> anyhow::Result<tera::Tera> {
    let mut sources: Vec<(String, String)> = bundled.iter().map(|(n, t)| ((*n).to_owned(), (*t).to_owned())).collect();
    if let Some(dir) = dir {
        for (name, text) in &mut sources {
            let path = dir.join(format!("{name}.tera"));
            if path.is_file() {
                *text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            }
        }
    }
    let mut tera = tera::Tera::default();
    tera.add_raw_templates(sources).with_context(|| format!("parsing the templates in prompts/{what}"))?;
    alerts::templates::register_filters(&mut tera);
    register_filters(&mut tera);
    Ok(tera)
}

/// A mapping and where it came from (join files may sit beside it).
#[derive(Debug)]
pub struct LoadedMapping {
    pub mapping: Mapping,
    pub dir: Option<PathBuf>,
    pub source: String,
}

/// Loads `--mapping`: a file path, or the name of a bundled mapping; none means `generated`,
/// the format `dealwatch generate` writes.
pub fn load_mapping(arg: Option<&str>) -> anyhow::Result<LoadedMapping> {
    let arg = arg.unwrap_or("generated");
    let path = Path::new(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading mapping {}", path.display()))?;
        let mapping = Mapping::from_toml(&text).with_context(|| format!("mapping {}", path.display()))?;
        return Ok(LoadedMapping {
            mapping,
            dir: path.parent().map(Path::to_path_buf),
            source: path.display().to_string(),
        });
    }
    match BUNDLED_MAPPINGS.iter().find(|(name, _)| *name == arg) {
        Some((name, text)) => {
            let mapping = Mapping::from_toml(text).with_context(|| format!("bundled mapping {name}"))?;
            Ok(LoadedMapping { mapping, dir: None, source: format!("bundled:{name}") })
        }
        None => {
            let names: Vec<&str> = BUNDLED_MAPPINGS.iter().map(|(n, _)| *n).collect();
            bail!("mapping {arg:?} is neither a file nor a bundled mapping ({})", names.join(", "))
        }
    }
}

/// Prompt texts from `dir` (`factors.toml`, `recommendations.toml`), or the bundled ones.
pub fn load_texts(dir: Option<&Path>) -> anyhow::Result<Texts> {
    let (factors, rules) = match dir {
        None => (FACTORS_TOML.to_owned(), RECOMMENDATIONS_TOML.to_owned()),
        Some(dir) => {
            let read = |name: &str| {
                let path = dir.join(name);
                std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
            };
            (read("factors.toml")?, read("recommendations.toml")?)
        }
    };
    Ok(Texts::from_toml(&factors, &rules)?)
}

/// Reads and validates an export and its lookup tables. `today` is the real date: dates after
/// it are errors (an as-of date in the past only hides later outcomes).
pub fn read_export(
    input: &Path,
    mapping: &LoadedMapping,
    today: NaiveDate,
    progress: bool,
) -> anyhow::Result<Ingested> {
    let file = File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let joins = mapping
        .mapping
        .joins
        .iter()
        .map(|join| {
            let path = find_join_file(&join.file, input, mapping.dir.as_deref())?;
            let file = File::open(&path).with_context(|| format!("opening lookup table {}", path.display()))?;
            ingest::read_table(BufReader::new(file), &mapping.mapping.source)
                .with_context(|| format!("reading lookup table {}", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let reader: Box<dyn Read> = if progress && size > 8 * 1024 * 1024 {
        let bar = indicatif::ProgressBar::new(size).with_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(format!("reading {}", input.file_name().and_then(|n| n.to_str()).unwrap_or("input")));
        Box::new(bar.wrap_read(file))
    } else {
        Box::new(file)
    };
    let ingested =
        ingest::ingest(BufReader::with_capacity(1 << 16, reader), &mapping.mapping, joins, ingest::Context { today })
            .with_context(|| format!("reading {} with mapping {}", input.display(), mapping.source))?;
    Ok(ingested)
}

/// Lookup tables are looked for beside the input, then beside the mapping file.
fn find_join_file(name: &str, input: &Path, mapping_dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let candidates: Vec<PathBuf> = [input.parent(), mapping_dir].into_iter().flatten().map(|d| d.join(name)).collect();
    candidates.iter().find(|p| p.is_file()).cloned().with_context(|| {
        let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        format!("the mapping joins {name}, which was not found (tried {})", tried.join(", "))
    })
}

/// The `tera` filters answers use beyond the alerts' (`money`): `pct` (0.452 → 45.2%), `pp`
/// (a change in percentage points, signed), `p` (a p-value: "p = 0.042", "p < 0.001") and
/// `signed` (+3.5 / −3.5).
pub fn register_filters(tera: &mut tera::Tera) {
    fn number(value: &serde_json::Value, name: &str) -> tera::Result<f64> {
        value.as_f64().ok_or_else(|| tera::Error::msg(format!("{name}: {value} is not a number")))
    }
    tera.register_filter("pct", |v: &serde_json::Value, _: &std::collections::HashMap<String, serde_json::Value>| {
        Ok(serde_json::Value::String(format!("{:.1}%", 100.0 * number(v, "pct")?)))
    });
    tera.register_filter("pp", |v: &serde_json::Value, _: &std::collections::HashMap<String, serde_json::Value>| {
        let x = number(v, "pp")?;
        Ok(serde_json::Value::String(format!("{}{:.1} pp", if x >= 0.0 { "+" } else { "−" }, x.abs())))
    });
    tera.register_filter("p", |v: &serde_json::Value, _: &std::collections::HashMap<String, serde_json::Value>| {
        let p = number(v, "p")?;
        Ok(serde_json::Value::String(if p < 0.001 { "p < 0.001".into() } else { format!("p = {p:.3}") }))
    });
    tera.register_filter(
        "signed",
        |v: &serde_json::Value, _: &std::collections::HashMap<String, serde_json::Value>| {
            let x = number(v, "signed")?;
            Ok(serde_json::Value::String(format!("{}{:.1}", if x >= 0.0 { "+" } else { "−" }, x.abs())))
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_mapping_and_the_prompts_load() {
        for (name, _) in BUNDLED_MAPPINGS {
            load_mapping(Some(name)).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
        load_texts(None).unwrap();
        let err = load_mapping(Some("nope")).unwrap_err().to_string();
        assert!(err.contains("generated, skygeni, maven"), "{err}");
    }
}
