"""A results page (index.html + images/) built with dominate; the layout users know from pix2pix/CycleGAN."""
import os

import dominate
from dominate.tags import a, br, h3, img, meta, p, table, td, tr

from util.util import atomic_write, mkdirs


class HTML:
    """Page at `web_dir/index.html`; images live in `web_dir/images/` and are referenced relative to it."""

    def __init__(self, web_dir, title, refresh=0):
        self.title = title
        self.web_dir = web_dir
        self.img_dir = os.path.join(web_dir, 'images')
        mkdirs(self.web_dir, self.img_dir)
        self.doc = dominate.document(title=title)
        with self.doc.head:
            meta(charset='utf-8')
            if refresh > 0:  # a training page reloads itself so a browser tab follows the run
                meta(http_equiv='refresh', content=str(refresh))

    def get_image_dir(self):
        return self.img_dir

    def add_header(self, text):
        with self.doc:
            h3(text)

    def add_text(self, text):
        with self.doc:
            p(text)

    def add_images(self, ims, txts, links, width=256):
        """One table row: each image (a path under images/) shown `width` px wide, linking to `links[i]`."""
        row = table(border=1, style='table-layout: fixed;')
        self.doc.add(row)
        with row:
            with tr():
                for im, txt, link in zip(ims, txts, links):
                    with td(style='word-wrap: break-word;', halign='center', valign='top'):
                        with p():
                            with a(href=os.path.join('images', link)):
                                img(style=f'width:{width}px', src=os.path.join('images', im))
                            br()
                            p(txt)

    def save(self):
        html = self.doc.render().encode('utf-8')
        atomic_write(os.path.join(self.web_dir, 'index.html'), lambda f: f.write(html))
