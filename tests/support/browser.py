"""Helpers of the browser tests (Playwright driving Debian's Chromium); the fixtures
(``browser``, ``live_server``, ``page``) are in tests/browser/conftest.py."""
import os

from .fixtures_path import fixture_path
from .notebook import PASSWORD

CHROMIUM = os.environ.get('SAGENB_TEST_CHROMIUM', '/usr/bin/chromium')


def sws_fixture(name):
    """A legacy worksheet of the shared fixtures; a missing one fails the test."""
    return fixture_path('sws', name)


def logged_in(browser, base, login_name):
    """A browser context of its own, logged in as ``login_name``: (context, page)."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(base + '/login')
    page.fill('input[name=login]', login_name)
    page.fill('input[name=password]', PASSWORD)
    page.click('#login-form button[type=submit]')
    page.wait_for_url(base + '/home/%s/' % login_name)
    return context, page


def log_in(page, base):
    page.goto(base + '/')
    assert page.url.startswith(base + '/login')
    page.fill('input[name=login]', 'alice')
    page.fill('input[name=password]', PASSWORD)
    page.click('button[type=submit]')
    page.wait_for_url(base + '/home/alice/')
