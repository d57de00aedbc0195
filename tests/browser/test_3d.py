"""Sage's 3-D viewer in the page, with no internet: three.js is served by the app."""
from urllib.parse import urlparse

from ..support.browser import log_in


def test_plot3d_shows_a_viewer_that_rotates(page, live_server):  # noqa: F811
    base = live_server
    outside = []
    served = []
    page.on('request', lambda r: urlparse(r.url).hostname not in ('127.0.0.1', None)
            and r.url.startswith('http') and outside.append(r.url))
    page.on('response', lambda r: 'three.min.js' in r.url and served.append(r.status))
    # Nothing may come from the internet (there is none here; a CDN request would hang).
    page.route('**/*', lambda route: route.abort()
               if urlparse(route.request.url).hostname not in ('127.0.0.1', None)
               and route.request.url.startswith('http') else route.continue_())
    log_in(page, base)
    page.fill('input[name=name]', '3-D')
    page.click('[data-action=new-worksheet]')
    page.wait_for_url(base + '/home/alice/*/')
    page.locator('.cell').first.locator('.cm-content').click()
    page.keyboard.type("var('y'); plot3d(sin(x*y), (x,-2,2), (y,-2,2))")
    page.keyboard.press('Shift+Enter')
    page.locator('.cell[data-status=done] iframe.output-html').first.wait_for()

    def viewer():
        for frame in page.frames:
            try:
                if frame.evaluate("typeof THREE !== 'undefined' && typeof camera !== 'undefined'"):
                    return frame
            except Exception:  # a frame that is still loading
                continue
        return None

    page.wait_for_function('() => 1', timeout=1000)
    for _ in range(100):
        frame = viewer()
        if frame is not None:
            break
        page.wait_for_timeout(200)
    assert frame is not None, 'no frame with three.js and a camera'
    loaded = frame.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    assert any(url.startswith(base + '/nbextensions/threejs-sage/') and
               url.endswith('/three.min.js') for url in loaded), loaded
    assert all(status == 200 for status in served), served
    assert not outside, outside
    assert frame.evaluate("document.querySelector('canvas') !== null")
    before = frame.evaluate('[camera.position.x, camera.position.y, camera.position.z]')
    canvas = frame.locator('canvas').first
    box = canvas.bounding_box()
    assert box and box['width'] > 100
    page.mouse.move(box['x'] + box['width'] / 2, box['y'] + box['height'] / 2)
    page.mouse.down()
    page.mouse.move(box['x'] + box['width'] / 2 + 120, box['y'] + box['height'] / 2 + 40,
                    steps=10)
    page.mouse.up()
    after = frame.evaluate('[camera.position.x, camera.position.y, camera.position.z]')
    assert after != before, 'dragging the scene should rotate the camera'
