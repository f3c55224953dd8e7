//! The chart: one panel per group, a horizontal bar of median ops/s per
//! contender (sqlreg red, the limit blue, the rest grey), written as SVG.

use std::path::Path;

use plotters::prelude::*;

use crate::contenders::Family;
use crate::ratios::median;
use crate::results::GroupResult;
use crate::runner::Result;

const COLUMNS: usize = 3;
const PANEL: (u32, u32) = (560, 300);

/// Draws every group's medians into `path`.
pub fn draw(results: &[GroupResult], path: &Path) -> Result<()> {
    let rows = results.len().div_ceil(COLUMNS).max(1);
    let size = (PANEL.0 * COLUMNS as u32, PANEL.1 * rows as u32);
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    for (panel, result) in root.split_evenly((rows, COLUMNS)).iter().zip(results) {
        draw_panel(panel, result)?;
    }
    root.present()?;
    Ok(())
}

fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    result: &GroupResult,
) -> Result<()> {
    let group = &result.group;
    let target = group.setup.target;
    let bars: Vec<(String, f64, RGBColor)> = result
        .rows
        .iter()
        .filter_map(|row| {
            let value = median(row)?;
            let color = match row.family {
                Family::SqlregRaw
                | Family::SqlregTraced
                | Family::SqlregEntity
                | Family::SqlregRouted
                | Family::SqlregPrimaryReads
                | Family::SqlregRoutedCaughtUp
                | Family::SqlregPgbouncer => RGBColor(200, 40, 40),
                f if f == group.limit => RGBColor(40, 80, 200),
                _ => RGBColor(150, 150, 150),
            };
            Some((row.family.label(target).to_owned(), value, color))
        })
        .collect();
    let top = bars.iter().map(|b| b.1).fold(1.0, f64::max) * 1.6;
    let caption = format!(
        "{} — {}, {}",
        group.workload.title(),
        target.label(),
        group.variant
    );
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 15))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(8)
        .build_cartesian_2d(0.0..top, 0.0..bars.len().max(1) as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_desc("ops/s (median)")
        .x_labels(5)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    let n = bars.len() as f64;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, value, color))| {
        let y = n - i as f64;
        Rectangle::new([(0.0, y - 0.85), (*value, y - 0.15)], color.filled())
    }))?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (label, value, _))| {
        let y = n - i as f64 - 0.3;
        Text::new(
            format!(" {label}  {value:.0}"),
            (*value, y),
            ("sans-serif", 12),
        )
    }))?;
    Ok(())
}
