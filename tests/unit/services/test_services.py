"""The services the views call, used directly (as scripts and tests do): the one
after-commit helper, and the mailed links' tokens on a real database."""
import logging
import time

import pytest
import transaction

from sagenb_pyramid.aftercommit import after_commit
from sagenb_pyramid.services import accounts, links
from sagenb_pyramid.services.evaluation import worksheet_key
from sagenb_pyramid.services.listing import listed


class Request:
    """What ``after_commit`` needs of a request: its transaction manager."""

    def __init__(self):
        self.tm = transaction.TransactionManager(explicit=True)


class Recorder:
    """A data manager that joins a transaction, optionally refusing to commit."""

    def __init__(self, fail_vote=False):
        self.fail_vote = fail_vote
        self.transaction_manager = None

    def abort(self, txn):
        pass

    def tpc_begin(self, txn):
        pass

    def commit(self, txn):
        pass

    def tpc_vote(self, txn):
        if self.fail_vote:
            raise RuntimeError('the database refused the commit')

    def tpc_finish(self, txn):
        pass

    def tpc_abort(self, txn):
        pass

    def sortKey(self):
        return 'recorder'


def test_after_commit_runs_once_after_a_commit():
    request, ran = Request(), []
    request.tm.begin()
    after_commit(request, lambda: ran.append('mail'))
    assert ran == []  # not before the commit
    request.tm.commit()
    assert ran == ['mail']
    request.tm.begin()
    request.tm.commit()
    assert ran == ['mail']  # a hook belongs to its transaction


def test_after_commit_never_runs_for_an_aborted_attempt():
    """pyramid_retry aborts an attempt that conflicted and runs the request again: only
    the attempt that committed hands its job over."""
    request, ran = Request(), []
    request.tm.begin()
    after_commit(request, lambda: ran.append('first attempt'))
    request.tm.abort()
    request.tm.begin()
    after_commit(request, lambda: ran.append('second attempt'))
    request.tm.commit()
    assert ran == ['second attempt']


def test_after_commit_skips_a_failed_commit():
    request, ran = Request(), []
    request.tm.begin()
    request.tm.get().join(Recorder(fail_vote=True))
    after_commit(request, lambda: ran.append('mail'))
    with pytest.raises(RuntimeError):
        request.tm.commit()
    request.tm.abort()
    assert ran == []


def test_a_failing_action_is_logged_and_the_commit_stands(caplog):
    request = Request()
    request.tm.begin()

    def broken():
        raise OSError('the mail server is gone')
    after_commit(request, broken)
    with caplog.at_level(logging.ERROR):
        request.tm.commit()  # the response is decided: no exception reaches it
    assert 'the mail server is gone' in caplog.text


def test_links_tokens_work_once_and_expire(notebook):
    notebook.add_user('alice')
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        token = links.issue_token(root, alice, 'reset', 60, email='a@example.org')
        old = links.issue_token(root, alice, 'confirm', -1)  # expired at once
        with pytest.raises(ValueError):
            links.issue_token(root, alice, 'anything', 60)
    with notebook.transaction() as root:
        record = links.find_token(root, token, ('reset',))
        assert record.user_id == root.user_by_login('alice').id
        assert record.email == 'a@example.org' and record.expires > time.time()
        assert links.find_token(root, token, ('confirm', 'email')) is None
        assert links.find_token(root, old, ('confirm',)) is None
        assert links.find_token(root, token + 'x', ('reset',)) is None
        links.drop_tokens(root, root.user_by_login('alice'), 'reset')
    with notebook.transaction() as root:
        assert links.find_token(root, token, ('reset',)) is None


def test_accounts_checks(notebook):
    notebook.add_user('Alice')
    with notebook.transaction() as root:
        assert accounts.login_taken(root, 'alice')
        assert not accounts.login_taken(root, 'bob')
    assert accounts.check_email('a@example.org') is None
    assert accounts.check_email('not an address')
    assert accounts.check_email('a@' + 'b' * 250 + '.org')
    # A newline at the end once passed (``$`` matches before it): a header injection
    # waiting for a mailer that trusts the address.
    assert accounts.check_email('a@example.org\n')
    assert accounts.check_email('a@example.org\nBcc: x@example.org')


def test_listing_and_keys(notebook):
    notebook.add_user('alice')
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        first = alice.create_worksheet('b')
        second = alice.create_worksheet('A')
        assert worksheet_key(first) == (alice.id, first.number)

        class Viewer:
            user = alice
        assert [w.name for w in listed(alice, Viewer, 'active', 'name')] == ['A', 'b']
        assert {w.name for w in listed(alice, Viewer, 'all', 'modified')} == {'A', 'b'}
        second.set_state(alice.id, 'trash')
        assert [w.name for w in listed(alice, Viewer, 'trash', 'name')] == ['A']
