//! The weekly summary's chart: win rate by quarter, overall and for the segments that moved,
//! as a PNG drawn with plotters. Text needs a font: DejaVu Sans from the system (Debian's
//! `fonts-dejavu-core`) or the configured file, loaded once; without one there is no chart, and
//! the summary says so instead.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;
use engine::insights::trend::QuarterSeries;
use plotters::prelude::*;

/// Where fonts usually are.
pub const SYSTEM_FONTS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

static FONT: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Loads the chart font (the configured file, else the first system one found) once per
/// process. Returns the file used, or `None` when there is none: charts are then skipped.
pub fn load_font(configured: Option<&Path>) -> Option<PathBuf> {
    FONT.get_or_init(|| {
        let candidates: Vec<PathBuf> = match configured {
            Some(p) => vec![p.to_path_buf()],
            None => SYSTEM_FONTS.iter().map(PathBuf::from).collect(),
        };
        for path in candidates {
            let Ok(bytes) = std::fs::read(&path) else { continue };
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            match plotters::style::register_font("sans-serif", FontStyle::Normal, bytes) {
                Ok(()) => return Some(path),
                Err(_) => tracing::warn!(font = %path.display(), "not a usable font for charts"),
            }
        }
        tracing::warn!(
            "no font for charts (install fonts-dejavu-core or set [alerts] chart_font): summaries go without one"
        );
        None
    })
    .clone()
}

/// The chart as PNG bytes; an error when no font is loaded.
pub fn win_rate_png(series: &[QuarterSeries], title: &str) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(FONT.get().is_some_and(Option::is_some), "no font loaded for charts");
    let (width, height) = (800u32, 420u32);
    let mut pixels = vec![255u8; (width * height * 3) as usize];
    let quarters: Vec<String> =
        series.first().map(|s| s.points.iter().map(|p| p.quarter.clone()).collect()).unwrap_or_default();
    anyhow::ensure!(!quarters.is_empty(), "no quarters to chart");
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(48)
            // Half a quarter of room on either side, so the first and last labels fit.
            .build_cartesian_2d(-0.5f64..(quarters.len() as f64 - 0.5), 0f64..100f64)
            .map_err(|e| anyhow::anyhow!("chart: {e}"))?;
        chart
            .configure_mesh()
            .x_labels(quarters.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() > 0.01 || i < 0.0 {
                    return String::new();
                }
                quarters.get(i as usize).cloned().unwrap_or_default()
            })
            .y_label_formatter(&|y| format!("{y:.0}%"))
            .disable_x_mesh()
            .y_desc("win rate")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| anyhow::anyhow!("chart axes: {e}"))?;
        for (k, s) in series.iter().enumerate() {
            let color = Palette99::pick(k).to_rgba();
            let points: Vec<(f64, f64)> =
                s.points.iter().enumerate().filter_map(|(i, p)| p.rate.map(|r| (i as f64, 100.0 * r))).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(if k == 0 { 3 } else { 2 })))
                .map_err(|e| anyhow::anyhow!("chart line: {e}"))?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3)));
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| anyhow::anyhow!("chart points: {e}"))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| anyhow::anyhow!("chart legend: {e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("chart: {e}"))?;
    }
    let image = image::RgbImage::from_raw(width, height, pixels).context("chart buffer")?;
    let mut png = Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageOutputFormat::Png).context("encoding the chart as PNG")?;
    Ok(png.into_inner())
}
