//! The storyboard: small tiles taken from the decoded frames every `interval` seconds, laid
//! out in JPEG sprite sheets for a player's seek-bar previews. Only the sheet being filled is
//! held as pixels; a full sheet is encoded and let go of.
use crate::images::{encode_jpeg, resize_area, scaled_size, Image};
use vidsight_domain::insights::Storyboard;
use vidsight_domain::Result;

/// Tiles are this wide (narrower frames give tiles their own width).
pub const TILE_WIDTH: u32 = 160;
/// A sheet holds at most `SHEET_COLUMNS` × `SHEET_ROWS` tiles…
pub const SHEET_COLUMNS: u32 = 10;
pub const SHEET_ROWS: u32 = 10;
/// …and is at most this tall (fewer rows for very tall pictures; JPEG allows 65 535).
const MAX_SHEET_HEIGHT: usize = 8192;
/// About this many tiles a video, whatever its length (see [`tile_interval`]).
const TARGET_TILES: f64 = 200.0;
/// Past this many tiles (a file that decodes far longer than it said) no more are taken.
pub const MAX_TILES: usize = 1000;
/// Timestamps this close to a tile's due time count as due.
const EPSILON: f64 = 1e-3;

/// Seconds between tiles: the smallest of 1, 2, 5, 10, 15, 20, 30 and 60 s that keeps the
/// video to [`TARGET_TILES`] tiles, past an hour and 40 minutes a multiple of 60 s.
pub fn tile_interval(duration: f64) -> f64 {
    const STEPS: [f64; 8] = [1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0];
    let duration = if duration.is_finite() {
        duration.max(0.0)
    } else {
        0.0
    };
    STEPS
        .iter()
        .copied()
        .find(|step| duration / step <= TARGET_TILES + EPSILON)
        .unwrap_or_else(|| (duration / TARGET_TILES / 60.0).ceil() * 60.0)
}

pub struct StoryboardBuilder {
    interval: f64,
    quality: u8,
    frame_width: usize,
    frame_height: usize,
    tile_width: usize,
    tile_height: usize,
    /// Rows of tiles on a full sheet.
    rows: usize,
    /// The next tile is taken from the first frame at or after this time.
    next_due: f64,
    times: Vec<f64>,
    /// The sheet being filled (allocated on its first tile), and how many tiles it has.
    sheet: Vec<u8>,
    on_sheet: usize,
    sheets: Vec<Image>,
}

impl StoryboardBuilder {
    pub fn new(interval: f64, frame_width: u32, frame_height: u32, quality: u8) -> Self {
        let (tile_width, tile_height) = scaled_size(frame_width, frame_height, TILE_WIDTH);
        Self {
            interval: if interval > 0.0 { interval } else { 1.0 },
            quality,
            frame_width: frame_width as usize,
            frame_height: frame_height as usize,
            tile_width: tile_width as usize,
            tile_height: tile_height as usize,
            rows: (MAX_SHEET_HEIGHT / tile_height as usize).clamp(1, SHEET_ROWS as usize),
            next_due: f64::NEG_INFINITY,
            times: Vec::new(),
            sheet: Vec::new(),
            on_sheet: 0,
            sheets: Vec::new(),
        }
    }

    /// Whether the frame shown at `time` becomes the next tile.
    pub fn wants(&self, time: f64) -> bool {
        self.times.len() < MAX_TILES && time + EPSILON >= self.next_due
    }

    /// The next decoded frame (packed RGB24 of the analysis size), shown from `time`.
    pub fn push(&mut self, time: f64, rgb: &[u8]) -> Result<()> {
        if !self.wants(time) {
            return Ok(());
        }
        let tile = resize_area(
            rgb,
            self.frame_width,
            self.frame_height,
            self.tile_width,
            self.tile_height,
        );
        let columns = SHEET_COLUMNS as usize;
        let sheet_width = columns * self.tile_width;
        if self.sheet.is_empty() {
            self.sheet = vec![0u8; sheet_width * self.rows * self.tile_height * 3];
        }
        let (column, row) = (self.on_sheet % columns, self.on_sheet / columns);
        let line = self.tile_width * 3;
        for y in 0..self.tile_height {
            let at = ((row * self.tile_height + y) * sheet_width + column * self.tile_width) * 3;
            self.sheet[at..at + line].copy_from_slice(&tile[y * line..(y + 1) * line]);
        }
        // the first tile opens the video, like the first shot
        self.times
            .push(if self.times.is_empty() { 0.0 } else { time });
        // one tile a frame at most: after a gap (variable frame rate), the next is due at the
        // next multiple of the interval
        self.next_due = ((time + EPSILON) / self.interval).floor() * self.interval + self.interval;
        self.on_sheet += 1;
        if self.on_sheet == columns * self.rows {
            self.flush()?;
        }
        Ok(())
    }

    /// Encodes the sheet being filled, cut to the rows it uses (and to its tiles when it has
    /// only one row).
    fn flush(&mut self) -> Result<()> {
        if self.on_sheet == 0 {
            return Ok(());
        }
        let columns = SHEET_COLUMNS as usize;
        let rows = self.on_sheet.div_ceil(columns);
        let used_columns = if rows == 1 { self.on_sheet } else { columns };
        let sheet_width = columns * self.tile_width;
        let width = used_columns * self.tile_width;
        let height = rows * self.tile_height;
        let pixels: Vec<u8> = if used_columns == columns {
            self.sheet[..sheet_width * height * 3].to_vec()
        } else {
            (0..height)
                .flat_map(|y| &self.sheet[y * sheet_width * 3..(y * sheet_width + width) * 3])
                .copied()
                .collect()
        };
        let jpeg = encode_jpeg(&pixels, width as u32, height as u32, self.quality)?;
        self.sheets.push(Image {
            name: format!("sheet-{:03}.jpg", self.sheets.len()),
            jpeg,
        });
        // the next sheet starts black, and memory holds no more than one sheet
        self.sheet.iter_mut().for_each(|value| *value = 0);
        self.on_sheet = 0;
        Ok(())
    }

    /// The storyboard of a video that ends at `end` (seconds), with its sheets; `None` when
    /// no frame came.
    pub fn finish(mut self, end: f64) -> Result<Option<(Storyboard, Vec<Image>)>> {
        self.flush()?;
        if self.times.is_empty() {
            return Ok(None);
        }
        let last = self.times.last().copied().unwrap_or(0.0);
        let storyboard = Storyboard {
            interval: self.interval,
            tile_width: self.tile_width as u32,
            tile_height: self.tile_height as u32,
            columns: SHEET_COLUMNS,
            rows: self.rows as u32,
            times: self.times,
            end: end.max(last),
            sheets: self.sheets.iter().map(|sheet| sheet.name.clone()).collect(),
        };
        Ok(Some((storyboard, self.sheets)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::jpeg_size;

    #[test]
    fn the_interval_keeps_to_about_200_tiles() {
        assert_eq!(tile_interval(0.0), 1.0);
        assert_eq!(tile_interval(5.0), 1.0);
        assert_eq!(tile_interval(200.0), 1.0);
        assert_eq!(tile_interval(200.5), 2.0);
        assert_eq!(tile_interval(600.0), 5.0);
        assert_eq!(tile_interval(1800.0), 10.0);
        assert_eq!(tile_interval(3600.0), 20.0);
        assert_eq!(tile_interval(7200.0), 60.0);
        assert_eq!(tile_interval(12_001.0), 120.0);
        assert_eq!(tile_interval(f64::NAN), 1.0);
        for duration in [1.0, 59.0, 199.0, 401.0, 999.0, 5000.0, 40_000.0, 200_000.0] {
            assert!(
                duration / tile_interval(duration) <= TARGET_TILES + 1e-6,
                "{duration}"
            );
        }
    }

    fn frame(value: u8) -> Vec<u8> {
        vec![value; 48 * 28 * 3]
    }

    #[test]
    fn tiles_follow_the_frames_timestamps() {
        // 25 fps for 2.5 s, then a gap (variable frame rate): frames at 2.52, then 5.3
        let mut builder = StoryboardBuilder::new(1.0, 48, 28, 80);
        let mut times: Vec<f64> = (0..63).map(|index| index as f64 / 25.0).collect();
        times.extend([5.3, 5.34, 6.02]);
        for (index, time) in times.iter().enumerate() {
            builder.push(*time, &frame(index as u8)).unwrap();
        }
        let (storyboard, sheets) = builder.finish(6.1).unwrap().unwrap();
        assert_eq!(storyboard.times, vec![0.0, 1.0, 2.0, 5.3, 6.02]);
        assert_eq!(storyboard.end, 6.1);
        // frames narrower than 160 give tiles their own size
        assert_eq!((storyboard.tile_width, storyboard.tile_height), (48, 28));
        assert_eq!(storyboard.sheets, vec!["sheet-000.jpg"]);
        assert_eq!(sheets.len(), 1);
        assert_eq!(&sheets[0].jpeg[..3], &[0xFF, 0xD8, 0xFF]);
    }

    #[test]
    fn sheets_hold_at_most_a_hundred_tiles_and_the_last_is_cut_short() {
        let mut builder = StoryboardBuilder::new(1.0, 480, 270, 70);
        for second in 0..215 {
            builder
                .push(second as f64, &vec![0u8; 480 * 270 * 3])
                .unwrap();
        }
        // memory: one sheet of pixels at most
        assert!(builder.sheet.len() <= 1600 * 900 * 3);
        let (storyboard, sheets) = builder.finish(215.0).unwrap().unwrap();
        assert_eq!(storyboard.times.len(), 215);
        assert_eq!((storyboard.tile_width, storyboard.tile_height), (160, 90));
        assert_eq!(
            storyboard.sheets,
            vec!["sheet-000.jpg", "sheet-001.jpg", "sheet-002.jpg"]
        );
        assert_eq!(jpeg_size(&sheets[0].jpeg), (1600, 900));
        assert_eq!(jpeg_size(&sheets[1].jpeg), (1600, 900));
        // 15 tiles: two rows
        assert_eq!(jpeg_size(&sheets[2].jpeg), (1600, 180));
    }

    #[test]
    fn very_tall_pictures_get_fewer_rows_a_sheet() {
        // 1:20 portrait: tiles 160x3200, two rows to a sheet
        let mut builder = StoryboardBuilder::new(1.0, 40, 800, 70);
        for second in 0..25 {
            builder
                .push(second as f64, &vec![0u8; 40 * 800 * 3])
                .unwrap();
        }
        let (storyboard, sheets) = builder.finish(25.0).unwrap().unwrap();
        assert_eq!((storyboard.tile_width, storyboard.tile_height), (40, 800));
        assert_eq!((storyboard.columns, storyboard.rows), (10, 10));
        let mut builder = StoryboardBuilder::new(1.0, 480, 9600, 70);
        for second in 0..25 {
            builder
                .push(second as f64, &vec![0u8; 480 * 9600 * 3])
                .unwrap();
        }
        let (storyboard, sheets_tall) = builder.finish(25.0).unwrap().unwrap();
        assert_eq!((storyboard.tile_width, storyboard.tile_height), (160, 3200));
        assert_eq!((storyboard.columns, storyboard.rows), (10, 2));
        assert_eq!(sheets_tall.len(), 2);
        assert_eq!(jpeg_size(&sheets_tall[0].jpeg), (1600, 6400));
        assert_eq!(jpeg_size(&sheets_tall[1].jpeg), (5 * 160, 3200));
        assert_eq!(sheets.len(), 1);
    }

    #[test]
    fn a_short_clip_gets_one_row_of_its_own_width() {
        let mut builder = StoryboardBuilder::new(1.0, 480, 270, 70);
        for index in 0..125 {
            builder
                .push(index as f64 / 25.0, &vec![9u8; 480 * 270 * 3])
                .unwrap();
        }
        let (storyboard, sheets) = builder.finish(5.0).unwrap().unwrap();
        assert_eq!(storyboard.times, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(jpeg_size(&sheets[0].jpeg), (5 * 160, 90));
        assert!(StoryboardBuilder::new(1.0, 480, 270, 70)
            .finish(1.0)
            .unwrap()
            .is_none());
    }
}
