//! A tiny 5×7 bitmap font for the live overlay (fps, latency, notices), so
//! no font files or text-rendering libraries are needed.

use camshow_core::Frame;

/// Glyphs: 7 rows of 5 columns, `#` set.
const GLYPHS: &[(char, [&str; 7])] = &[
    (
        '0',
        [
            " ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### ",
        ],
    ),
    (
        '1',
        [
            "  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### ",
        ],
    ),
    (
        '2',
        [
            " ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####",
        ],
    ),
    (
        '3',
        [
            "#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### ",
        ],
    ),
    (
        '4',
        [
            "   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # ",
        ],
    ),
    (
        '5',
        [
            "#####", "#    ", "#### ", "    #", "    #", "#   #", " ### ",
        ],
    ),
    (
        '6',
        [
            "  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### ",
        ],
    ),
    (
        '7',
        [
            "#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   ",
        ],
    ),
    (
        '8',
        [
            " ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### ",
        ],
    ),
    (
        '9',
        [
            " ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  ",
        ],
    ),
    (
        '.',
        [
            "     ", "     ", "     ", "     ", "     ", " ##  ", " ##  ",
        ],
    ),
    (
        ':',
        [
            "     ", " ##  ", " ##  ", "     ", " ##  ", " ##  ", "     ",
        ],
    ),
    (
        '-',
        [
            "     ", "     ", "     ", "#####", "     ", "     ", "     ",
        ],
    ),
    (
        '/',
        [
            "    #", "    #", "   # ", "  #  ", " #   ", "#    ", "#    ",
        ],
    ),
    (
        '%',
        [
            "##   ", "##  #", "   # ", "  #  ", " #   ", "#  ##", "   ##",
        ],
    ),
    (
        'a',
        [
            "     ", "     ", " ### ", "    #", " ####", "#   #", " ####",
        ],
    ),
    (
        'b',
        [
            "#    ", "#    ", "# ## ", "##  #", "#   #", "#   #", "#### ",
        ],
    ),
    (
        'c',
        [
            "     ", "     ", " ### ", "#    ", "#    ", "#   #", " ### ",
        ],
    ),
    (
        'd',
        [
            "    #", "    #", " ## #", "#  ##", "#   #", "#   #", " ####",
        ],
    ),
    (
        'e',
        [
            "     ", "     ", " ### ", "#   #", "#####", "#    ", " ### ",
        ],
    ),
    (
        'f',
        [
            "  ## ", " #  #", " #   ", "###  ", " #   ", " #   ", " #   ",
        ],
    ),
    (
        'g',
        [
            "     ", " ####", "#   #", "#   #", " ####", "    #", " ### ",
        ],
    ),
    (
        'h',
        [
            "#    ", "#    ", "# ## ", "##  #", "#   #", "#   #", "#   #",
        ],
    ),
    (
        'i',
        [
            "  #  ", "     ", " ##  ", "  #  ", "  #  ", "  #  ", " ### ",
        ],
    ),
    (
        'j',
        [
            "   # ", "     ", "  ## ", "   # ", "   # ", "#  # ", " ##  ",
        ],
    ),
    (
        'k',
        [
            "#    ", "#    ", "#  # ", "# #  ", "##   ", "# #  ", "#  # ",
        ],
    ),
    (
        'l',
        [
            " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### ",
        ],
    ),
    (
        'm',
        [
            "     ", "     ", "## # ", "# # #", "# # #", "#   #", "#   #",
        ],
    ),
    (
        'n',
        [
            "     ", "     ", "# ## ", "##  #", "#   #", "#   #", "#   #",
        ],
    ),
    (
        'o',
        [
            "     ", "     ", " ### ", "#   #", "#   #", "#   #", " ### ",
        ],
    ),
    (
        'p',
        [
            "     ", "     ", "#### ", "#   #", "#### ", "#    ", "#    ",
        ],
    ),
    (
        'q',
        [
            "     ", "     ", " ## #", "#  ##", " ####", "    #", "    #",
        ],
    ),
    (
        'r',
        [
            "     ", "     ", "# ## ", "##  #", "#    ", "#    ", "#    ",
        ],
    ),
    (
        's',
        [
            "     ", "     ", " ### ", "#    ", " ### ", "    #", "#### ",
        ],
    ),
    (
        't',
        [
            " #   ", " #   ", "###  ", " #   ", " #   ", " #  #", "  ## ",
        ],
    ),
    (
        'u',
        [
            "     ", "     ", "#   #", "#   #", "#   #", "#  ##", " ## #",
        ],
    ),
    (
        'v',
        [
            "     ", "     ", "#   #", "#   #", "#   #", " # # ", "  #  ",
        ],
    ),
    (
        'w',
        [
            "     ", "     ", "#   #", "#   #", "# # #", "# # #", " # # ",
        ],
    ),
    (
        'x',
        [
            "     ", "     ", "#   #", " # # ", "  #  ", " # # ", "#   #",
        ],
    ),
    (
        'y',
        [
            "     ", "     ", "#   #", "#   #", " ####", "    #", " ### ",
        ],
    ),
    (
        'z',
        [
            "     ", "     ", "#####", "   # ", "  #  ", " #   ", "#####",
        ],
    ),
];

fn glyph(c: char) -> Option<&'static [&'static str; 7]> {
    let c = c.to_ascii_lowercase();
    GLYPHS.iter().find(|g| g.0 == c).map(|g| &g.1)
}

/// Width in pixels of `text` at `scale`.
pub fn text_width(text: &str, scale: i64) -> i64 {
    text.chars().count() as i64 * 6 * scale
}

/// Draws `text` with its top-left corner at (`x`, `y`), each font pixel
/// `scale`×`scale`, on a dark backing box so it reads on any picture.
/// Characters without a glyph are drawn as spaces. Clipped at the frame edges.
pub fn draw_text(frame: &mut Frame, x: i64, y: i64, text: &str, scale: i64, rgb: [u8; 3]) {
    let scale = scale.max(1);
    let (w, h) = (text_width(text, scale) + 2 * scale, 9 * scale);
    for yy in y - scale..y - scale + h {
        for xx in x - scale..x - scale + w {
            if xx >= 0 && yy >= 0 && xx < i64::from(frame.width()) && yy < i64::from(frame.height())
            {
                let p = frame.pixel(xx as u32, yy as u32);
                frame.put_pixel(xx, yy, p.map(|v| v / 3));
            }
        }
    }
    for (i, c) in text.chars().enumerate() {
        let Some(g) = glyph(c) else { continue };
        let gx = x + i as i64 * 6 * scale;
        for (row, line) in g.iter().enumerate() {
            for (col, b) in line.bytes().enumerate() {
                if b == b'#' {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            frame.put_pixel(
                                gx + col as i64 * scale + dx,
                                y + row as i64 * scale + dy,
                                rgb,
                            );
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_drawn_inside_its_box_and_clipped() {
        let mut f = Frame::filled(80, 20, [200, 200, 200]).unwrap();
        draw_text(&mut f, 2, 2, "fps 12.5", 1, [255, 0, 0]);
        let red = (0..20)
            .flat_map(|y| (0..80).map(move |x| (x, y)))
            .filter(|&(x, y)| f.pixel(x, y) == [255, 0, 0])
            .count();
        assert!(red > 40, "{red}");
        assert_eq!(f.pixel(79, 19), [200, 200, 200]);
        // Off the frame: no panic.
        draw_text(&mut f, 70, 15, "latency 999 ms", 3, [0, 255, 0]);
        draw_text(&mut f, -50, -50, "x", 2, [0, 255, 0]);
        for c in "0123456789.:-/%abcdefghijklmnopqrstuvwxyz".chars() {
            assert!(glyph(c).is_some(), "{c}");
        }
        assert!(GLYPHS.iter().all(|g| g.1.iter().all(|r| r.len() == 5)));
    }
}
