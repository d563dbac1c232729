//! The analysis report's charts as PNG images: Outlook and Gmail show no SVG in a mail, and a
//! PNG also embeds in `report.html` as a data: URI.
//!
//! Drawn with plotters into an RGB buffer, in DejaVu Sans embedded in the binary (a server has
//! no fonts to rely on), then encoded with the `png` crate. The input is the report's figures
//! and the labels of the configuration; nothing from a mail.

use std::sync::OnceLock;

use plotters::prelude::*;

/// The colour of every bar: a blue that reads on white and in grey print. The Chromium test
/// finds the rendered charts by this colour.
pub const BAR_COLOUR: (u8, u8, u8) = (31, 95, 160);

const WIDTH: u32 = 720;
const HEIGHT: u32 = 300;
/// Category labels longer than this are cut with an ellipsis.
const MAX_LABEL_CHARS: usize = 28;
/// At most this many categories get a bar of their own; the rest are one bar "other".
pub const MAX_CATEGORY_BARS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("cannot draw the chart {chart}: {reason}")]
    Draw { chart: &'static str, reason: String },
}

/// One bar: its label and value (a count, or a percentage for the deadline chart).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
}

fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .is_ok()
            && plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold())
                .is_ok()
    })
}

fn rgb(c: (u8, u8, u8)) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

fn short(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL_CHARS {
        label.to_string()
    } else {
        let cut: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
        format!("{cut}…")
    }
}

/// The upper end of a count axis: a little above the largest value, at least 1.
fn axis_top(bars: &[Bar]) -> u32 {
    let max = bars.iter().map(|b| b.value).fold(0.0f64, f64::max);
    if max <= 0.0 {
        1
    } else {
        // Counts of a register fit in u32; the cast saturates.
        (max * 1.15).ceil() as u32
    }
}

/// A bar's length on a whole-number axis.
fn height_of(v: f64, top: u32) -> u32 {
    (v.max(0.0).round() as u32).min(top)
}

fn encode(chart: &'static str, rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, ChartError> {
    let fail = |e: png::EncodingError| ChartError::Draw {
        chart,
        reason: e.to_string(),
    };
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(fail)?;
        writer.write_image_data(rgb).map_err(fail)?;
    }
    Ok(out)
}

/// Vertical bars (one per month, or per milestone), with the title above. `percent`: the axis
/// runs from 0 to 100 %.
pub fn vertical_bars(
    chart: &'static str,
    title: &str,
    bars: &[Bar],
    percent: bool,
) -> Result<Vec<u8>, ChartError> {
    let fail = |e: String| ChartError::Draw { chart, reason: e };
    if !font_ready() {
        return Err(fail("the embedded font cannot be read".into()));
    }
    let mut buffer = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let n = bars.len().max(1);
        let top = if percent { 100 } else { axis_top(bars) };
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18).into_font().style(FontStyle::Bold))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(44)
            .build_cartesian_2d((0..n).into_segmented(), 0u32..top)
            .map_err(|e| fail(e.to_string()))?;
        let labels: Vec<String> = bars.iter().map(|b| short(&b.label)).collect();
        let label_font = ("sans-serif", if n > 8 { 11 } else { 13 });
        c.configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_style(label_font)
            .y_label_style(("sans-serif", 12))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_labels(top.min(10) as usize + 1)
            .y_label_formatter(&|v| {
                if percent {
                    format!("{v}%")
                } else {
                    v.to_string()
                }
            })
            .draw()
            .map_err(|e| fail(e.to_string()))?;
        c.draw_series(bars.iter().enumerate().map(|(i, b)| {
            Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0),
                    (SegmentValue::Exact(i + 1), height_of(b.value, top)),
                ],
                rgb(BAR_COLOUR).filled(),
            )
        }))
        .map_err(|e| fail(e.to_string()))?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    encode(chart, &buffer, WIDTH, HEIGHT)
}

/// Horizontal bars, one per label (the categories), largest first as given.
pub fn horizontal_bars(
    chart: &'static str,
    title: &str,
    bars: &[Bar],
) -> Result<Vec<u8>, ChartError> {
    let fail = |e: String| ChartError::Draw { chart, reason: e };
    if !font_ready() {
        return Err(fail("the embedded font cannot be read".into()));
    }
    let n = bars.len().max(1);
    // Room for every label: 26 pixels a bar, at least the usual height.
    let height = (80 + 26 * n as u32).max(HEIGHT / 2);
    let mut buffer = vec![255u8; (WIDTH * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let top = axis_top(bars);
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18).into_font().style(FontStyle::Bold))
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(220)
            .build_cartesian_2d(0u32..top, (0..n).into_segmented())
            .map_err(|e| fail(e.to_string()))?;
        // Segment 0 is at the bottom: the first bar goes on top.
        let labels: Vec<String> = bars.iter().rev().map(|b| short(&b.label)).collect();
        c.configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_style(("sans-serif", 13))
            .x_label_style(("sans-serif", 12))
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .x_labels(top.min(10) as usize + 1)
            .x_label_formatter(&|v| v.to_string())
            .draw()
            .map_err(|e| fail(e.to_string()))?;
        c.draw_series(bars.iter().rev().enumerate().map(|(i, b)| {
            Rectangle::new(
                [
                    (0, SegmentValue::Exact(i)),
                    (height_of(b.value, top), SegmentValue::Exact(i + 1)),
                ],
                rgb(BAR_COLOUR).filled(),
            )
        }))
        .map_err(|e| fail(e.to_string()))?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    encode(chart, &buffer, WIDTH, height)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(values: &[f64]) -> Vec<Bar> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Bar {
                label: format!("maand {i}"),
                value: *v,
            })
            .collect()
    }

    /// The decoded pixels of a PNG, and how many are the bar colour.
    fn bar_pixels(png_bytes: &[u8]) -> (u32, u32, usize) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let (r, g, b) = BAR_COLOUR;
        let n = buf[..info.buffer_size()]
            .chunks(3)
            .filter(|p| p == &[r, g, b])
            .count();
        (info.width, info.height, n)
    }

    #[test]
    fn bars_are_drawn_in_proportion_to_their_values() {
        let small = vertical_bars("t", "Klachten", &bars(&[1.0, 1.0, 1.0]), false).unwrap();
        let (w, h, one) = bar_pixels(&small);
        assert_eq!((w, h), (WIDTH, HEIGHT));
        assert!(one > 0);
        // Against an axis of the same height, twice the values draw about twice the blue.
        let mixed = vertical_bars("t", "Klachten", &bars(&[2.0, 1.0, 1.0]), false).unwrap();
        let (_, _, more) = bar_pixels(&mixed);
        assert!(
            more < one,
            "the axis grew, so the unit bars shrank: {more} vs {one}"
        );
    }

    #[test]
    fn an_empty_period_still_draws_a_chart() {
        let png_bytes = vertical_bars("t", "Klachten", &[], false).unwrap();
        let (_, _, n) = bar_pixels(&png_bytes);
        assert_eq!(n, 0);
        let png_bytes = horizontal_bars("t", "Categorie", &[]).unwrap();
        assert!(bar_pixels(&png_bytes).1 > 0);
    }

    #[test]
    fn percentages_are_drawn_against_a_fixed_axis() {
        let full = vertical_bars("t", "Op tijd", &bars(&[100.0]), true).unwrap();
        let half = vertical_bars("t", "Op tijd", &bars(&[50.0]), true).unwrap();
        let (_, _, f) = bar_pixels(&full);
        let (_, _, h) = bar_pixels(&half);
        let ratio = h as f64 / f as f64;
        assert!((0.4..0.6).contains(&ratio), "{ratio}");
    }

    #[test]
    fn horizontal_bars_grow_with_the_number_of_labels_and_cut_long_ones() {
        let many: Vec<Bar> = (0..12)
            .map(|i| Bar {
                label: format!("een heel lange categorienaam nummer {i} met meer"),
                value: f64::from(i + 1),
            })
            .collect();
        let png_bytes = horizontal_bars("t", "Categorie", &many).unwrap();
        let (_, h, n) = bar_pixels(&png_bytes);
        assert!(h > HEIGHT, "{h}");
        assert!(n > 0);
        assert!(short(&many[0].label).ends_with('…'));
    }
}
