//! Contact sheets: a titled grid of equally sized, labelled tiles, written as PNG with its layout embedded.
//!
//! Every sheet the showcase commands write (demo, preview, presets) goes
//! through [`render`], so they share one look: dark background, tiles on a
//! fixed grid with their aspect kept, a label under each tile. The tile
//! rectangles are stored in the PNG as an iTXt chunk ([`LAYOUT_KEY`]) so tools
//! and tests can find each tile without guessing the geometry.
use serde::Serialize;
use stylize_model::RgbImage;

pub mod canvas;
pub mod font;

use canvas::{fit_size, resize_to_fit, Canvas};

/// PNG metadata keyword holding the JSON [`Layout`].
pub const LAYOUT_KEY: &str = "stylize:layout";

const BACKGROUND: [u8; 3] = [24, 24, 28];
const FRAME: [u8; 3] = [58, 58, 66];
const TITLE: [u8; 3] = [245, 245, 248];
const TEXT: [u8; 3] = [222, 222, 228];
const MUTED: [u8; 3] = [140, 140, 152];
const MARGIN: u32 = 28;
const GAP_X: u32 = 16;
const GAP_Y: u32 = 16;
const TITLE_SCALE: u32 = 3;
const LABEL_SCALE: u32 = 2;
/// Space between a tile and its label.
const LABEL_GAP: u32 = 8;

/// One picture on the sheet with the words under it.
pub struct Tile {
    pub image: RgbImage,
    /// Words before the label, drawn muted (may be empty).
    pub prefix: String,
    /// Main label, drawn bright.
    pub label: String,
    /// Secondary words after the label, drawn muted (may be empty).
    pub detail: String,
    /// What the tile shows, for the layout metadata: `original`, `styled`, `preset:N`, ...
    pub role: String,
}

/// A grid of tiles under a title. `None` slots stay empty (to end a row early).
pub struct Sheet {
    pub title: String,
    pub subtitle: String,
    pub columns: usize,
    /// Every tile is fitted (aspect kept, centred) into a box of this size.
    pub tile_box: (u32, u32),
    pub slots: Vec<Option<Tile>>,
}

/// Where each tile landed, in sheet pixels (the picture itself, not its box).
#[derive(Debug, Serialize)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    pub tiles: Vec<Placed>,
}

#[derive(Debug, Serialize)]
pub struct Placed {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    pub row: usize,
    pub column: usize,
    pub role: String,
    pub label: String,
}

/// The box for tiles of `width` × `height` pictures whose longer side becomes `long_side`.
pub fn tile_box(width: u32, height: u32, long_side: u32) -> (u32, u32) {
    fit_size(width, height, long_side, long_side)
}

/// Draws the sheet; returns the picture and where every tile went.
pub fn render(sheet: &Sheet) -> (RgbImage, Layout) {
    let columns = sheet.columns.max(1);
    let rows = sheet.slots.len().div_ceil(columns).max(1);
    let (box_w, box_h) = sheet.tile_box;
    let label_h = font::line_height(LABEL_SCALE);
    let title_h = font::line_height(TITLE_SCALE);
    let header_h = title_h
        + if sheet.subtitle.is_empty() {
            0
        } else {
            6 + label_h
        }
        + 20;
    let grid_w = columns as u32 * box_w + (columns as u32 - 1) * GAP_X;
    let row_h = box_h + LABEL_GAP + label_h;
    let width = 2 * MARGIN + grid_w;
    let height = MARGIN + header_h + rows as u32 * row_h + (rows as u32 - 1) * GAP_Y + MARGIN;
    let mut canvas = Canvas::new(width, height, BACKGROUND);

    let text_room = width - 2 * MARGIN;
    let title = font::fit(&sheet.title, TITLE_SCALE, text_room);
    font::draw(
        &mut canvas,
        &title,
        MARGIN as i64,
        MARGIN as i64,
        TITLE_SCALE,
        TITLE,
    );
    if !sheet.subtitle.is_empty() {
        let subtitle = font::fit(&sheet.subtitle, LABEL_SCALE, text_room);
        font::draw(
            &mut canvas,
            &subtitle,
            MARGIN as i64,
            (MARGIN + title_h + 6) as i64,
            LABEL_SCALE,
            MUTED,
        );
    }

    let mut tiles = Vec::new();
    for (i, slot) in sheet.slots.iter().enumerate() {
        let Some(tile) = slot else { continue };
        let (row, column) = (i / columns, i % columns);
        let box_x = MARGIN + column as u32 * (box_w + GAP_X);
        let box_y = MARGIN + header_h + row as u32 * (row_h + GAP_Y);
        let picture = resize_to_fit(&tile.image, box_w, box_h);
        // Centred in its box, so tiles of another aspect still line up on the grid.
        let x = box_x + (box_w - picture.width) / 2;
        let y = box_y + (box_h - picture.height) / 2;
        canvas.outline(x as i64, y as i64, picture.width, picture.height, FRAME);
        canvas.blit(&picture, x as i64, y as i64);
        draw_label(&mut canvas, tile, box_x, box_y + box_h + LABEL_GAP, box_w);
        tiles.push(Placed {
            x,
            y,
            w: picture.width,
            h: picture.height,
            row,
            column,
            role: tile.role.clone(),
            label: [&tile.prefix, &tile.label, &tile.detail]
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        });
    }
    (
        canvas.into_image(),
        Layout {
            width,
            height,
            tiles,
        },
    )
}

/// Prefix (muted), label (bright) and detail (muted) on one line, cut to the tile's width.
fn draw_label(canvas: &mut Canvas, tile: &Tile, x: u32, y: u32, room: u32) {
    let spans = [
        (&tile.prefix, MUTED),
        (&tile.label, TEXT),
        (&tile.detail, MUTED),
    ];
    let space = font::advance(LABEL_SCALE);
    let mut pen = x as i64;
    for (text, color) in spans.into_iter().filter(|(t, _)| !t.is_empty()) {
        let used = (pen - x as i64) as u32;
        // A fragment of two letters and an ellipsis says nothing; stop instead.
        if used + 3 * space > room {
            break;
        }
        let text = font::fit(text, LABEL_SCALE, room - used);
        pen = font::draw(canvas, &text, pen, y as i64, LABEL_SCALE, color) + space as i64;
    }
}

/// The sheet as PNG bytes with its layout embedded.
pub fn to_png(sheet: &Sheet) -> anyhow::Result<(Vec<u8>, Layout)> {
    let (picture, layout) = render(sheet);
    let json = serde_json::to_string(&layout)?;
    Ok((
        canvas::encode_png(&picture, Some((LAYOUT_KEY, &json)))?,
        layout,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32, v: u8) -> RgbImage {
        RgbImage::new(w, h, vec![v; (w * h * 3) as usize])
    }

    #[test]
    fn tiles_sit_on_a_grid_with_their_aspect() {
        let slots = (0..5)
            .map(|i| {
                Some(Tile {
                    image: solid(160, 90, 40 * i as u8),
                    prefix: String::new(),
                    label: format!("tile {i}"),
                    detail: "detail".into(),
                    role: "styled".into(),
                })
            })
            .collect();
        let sheet = Sheet {
            title: "T".into(),
            subtitle: "s".into(),
            columns: 3,
            tile_box: tile_box(160, 90, 120),
            slots,
        };
        let (img, layout) = render(&sheet);
        assert_eq!((img.width, img.height), (layout.width, layout.height));
        assert_eq!(layout.tiles.len(), 5);
        let t = &layout.tiles;
        assert_eq!((t[0].w, t[0].h), (120, 68));
        assert_eq!(t[0].y, t[2].y);
        assert_eq!(t[0].x, t[3].x);
        assert!(t[3].y > t[0].y + t[0].h);
        assert_eq!((t[4].row, t[4].column), (1, 1));
        // The tile's pixels are really there.
        let px = |x: u32, y: u32| img.data[((y * img.width + x) * 3) as usize];
        assert_eq!(px(t[4].x + 5, t[4].y + 5), 160);
    }
}
