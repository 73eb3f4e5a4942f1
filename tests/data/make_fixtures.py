"""Makes tests/data/scan_page1.png and scan_page2.png: two pages of a Chinese annual report as a
scanner would give them (grey, no text layer), for the OCR tests. Run once, with a CJK font
installed (e.g. Debian's fonts-wqy-zenhei); the images are committed, so the tests need no font.

    python tests/data/make_fixtures.py [/path/to/cjk-font.ttc]
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
FONT = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"
WIDTH, HEIGHT = 1000, 1300  # a page at ~120 dpi: 30-pixel characters, as a 150-dpi scan of 五号 text
MARGIN, SIZE, LEADING = 70, 30, 52
PER_LINE = (WIDTH - 2 * MARGIN) // SIZE  # 28 characters a line: longer paragraphs wrap as on paper

PAGES = {
    "scan_page1.png": [
        ("title", "青山区司法局2023年法治政府建设年度报告"),
        ("text", "2023年，青山区司法局坚持以习近平法治思想为指导，全面推进法治政府建设，现将有关情况报告如下。"),
        ("text", "一、主要工作"),
        ("text", "（一）加强法治培训。全年组织法治培训12场，参训干部860人次。"),
        ("text", "（二）推进普法宣传。开展“八五”普法主题宣传活动46场，发放宣传资料3200份。"),
    ],
    "scan_page2.png": [
        ("text", "二、行政复议与应诉"),
        ("text", "全年办理行政复议案件37件，办理行政应诉案件21件，出具法律意见书95份，行政机关负责人出庭应诉率100%。"),
        ("text", "三、下一步工作"),
        ("text", "2024年，青山区司法局将继续深化法治政府建设，提升依法行政水平。"),
        ("text", "青山区司法局"),
        ("text", "2024年1月20日"),
    ],
}


def wrap(text: str) -> list[str]:
    return [text[i : i + PER_LINE] for i in range(0, len(text), PER_LINE)]


def render(lines: list[tuple[str, str]], font_path: str) -> Image.Image:
    page = Image.new("L", (WIDTH, HEIGHT), 246)  # scanner paper is not pure white
    draw = ImageDraw.Draw(page)
    body = ImageFont.truetype(font_path, SIZE)
    title = ImageFont.truetype(font_path, SIZE + 6)
    y = MARGIN
    for kind, text in lines:
        if kind == "title":
            w = draw.textlength(text, font=title)
            draw.text(((WIDTH - w) / 2, y), text, font=title, fill=20)
            y += LEADING + 20
            continue
        for line in wrap(text):
            draw.text((MARGIN, y), line, font=body, fill=25)
            y += LEADING
    return page.filter(ImageFilter.GaussianBlur(0.6))  # the softness of a scan


def main() -> None:
    font = sys.argv[1] if len(sys.argv) > 1 else FONT
    for name, lines in PAGES.items():
        render(lines, font).save(HERE / name, optimize=True)
        print(HERE / name, (HERE / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
