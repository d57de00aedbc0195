"""services/login.py, services/tokens.py and the address-change check of
services/accounts.py called directly: password logins with the rate limit, sign-up,
password change, API tokens."""
import pytest
from pyramid.httpexceptions import HTTPException

from sagenb_pyramid import audit
from sagenb_pyramid.auth.passwords import verify_password
from sagenb_pyramid.services import accounts, login

from ...support.notebook import PASSWORD
from ...support.service_request import ServiceRequest

pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


def attempt(notebook, name, password, address='192.0.2.7'):
    """One login in a transaction of its own: the user's login, or the ``Refused``."""
    with notebook.transaction() as root:
        request = ServiceRequest(notebook, root, address=address)
        try:
            return login.password_login(request, root, name, password).login
        except login.Refused as refused:
            return refused


def test_password_login_and_its_lock(notebook):
    notebook.add_user('alice')
    assert attempt(notebook, 'alice', PASSWORD) == 'alice'
    wrong, unknown = attempt(notebook, 'alice', 'nope'), attempt(notebook, 'nobody', 'x')
    # The same answer whether or not the account exists.
    assert (wrong.message, wrong.status) == (unknown.message, unknown.status) == \
        (login.WRONG, 400)
    for _ in range(5):  # sagenb.login.free_attempts
        assert attempt(notebook, 'alice', 'nope').status == 400
    locked = attempt(notebook, 'alice', PASSWORD)
    assert locked.status == 429 and locked.retry_after > 0
    with notebook.transaction() as root:
        entries = [(e.action, e.target) for e in audit.entries(root, newest_first=False)]
    assert entries[:3] == [('login', 'alice'), ('login_failed', 'alice'),
                           ('login_failed', 'nobody')]


def test_a_suspended_account_is_told_only_with_the_right_password(notebook):
    notebook.add_user('alice')
    with notebook.transaction() as root:
        root.user_by_login('alice').suspended = True
    assert attempt(notebook, 'alice', 'nope').message == login.WRONG
    refused = attempt(notebook, 'alice', PASSWORD)
    assert refused.status == 403 and 'suspended' in refused.message


def test_sign_up_and_change_password(notebook):
    with notebook.transaction() as root:
        request = ServiceRequest(notebook, root)
        assert login.signup_problems('alice', 'short', 'short', '', False)
        assert login.signup_problems('alice', PASSWORD, PASSWORD, '', True) == [
            'That is not an e-mail address.']
        assert login.signup_problems('alice', PASSWORD, PASSWORD, '', False) == []
        user = login.sign_up(request, root, 'alice', PASSWORD, '', False, False)
        assert verify_password(user, PASSWORD) and not user.awaiting_confirmation
        with pytest.raises(login.Refused, match='taken'):
            login.sign_up(request, root, 'Alice', PASSWORD, '', False, False)

        new = 'another horse battery'
        assert login.change_password(user, 'wrong', new, new) == [
            'The current password is wrong.']
        assert login.change_password(user, PASSWORD, new, new + 'x') == [
            'The two new passwords differ.']
        epoch = user.session_epoch
        assert login.change_password(user, PASSWORD, new, new) == []
        assert verify_password(user, new) and user.session_epoch == epoch + 1
        user.auth_source = 'ldap'
        assert 'directory' in login.change_password(user, new, PASSWORD, PASSWORD)[0]


def test_email_change_problem(notebook):
    notebook.add_user('alice')
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        alice.email = 'a@example.org'
        assert accounts.email_change_problem(alice, 'b@example.org', PASSWORD) is None
        assert accounts.email_change_problem(alice, 'A@example.org', PASSWORD) == \
            'That is already your address.'
        assert accounts.email_change_problem(alice, 'b@example.org', 'x') == \
            'The current password is wrong.'
        assert accounts.email_change_problem(alice, 'nonsense', PASSWORD)
        alice.auth_source = 'ldap'
        with pytest.raises(HTTPException) as caught:
            accounts.email_change_problem(alice, 'b@example.org', PASSWORD)
        assert caught.value.code == 409


def test_tokens_made_listed_and_revoked(notebook):
    from sagenb_pyramid.services import tokens
    from sagenb_pyramid.auth.tokens import find_user_token
    notebook.add_user('alice')
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        request = ServiceRequest(notebook, root, alice)
        token, prefix = tokens.new_token(request, root, alice, 'laptop', 'read', None)
        other, other_prefix = tokens.new_token(request, root, alice, 'ci', 'full', None)
        listed = tokens.token_list(root, alice)
        assert [(t['prefix'], t['label'], t['scope']) for t in listed] == [
            (prefix, 'laptop', 'read'), (other_prefix, 'ci', 'full')]
        own = find_user_token(root, alice, prefix)
        # A request that came with one token may revoke only that one.
        with pytest.raises(HTTPException) as caught:
            tokens.revoke(request, root, alice, other_prefix, only=own)
        assert caught.value.code == 403
        tokens.revoke(request, root, alice, prefix, only=own)
        with pytest.raises(HTTPException) as caught:
            tokens.revoke(request, root, alice, prefix)
        assert caught.value.code == 404
        for n in range(tokens.MAX_TOKENS - 1):
            tokens.new_token(request, root, alice, str(n), 'full', None)
        with pytest.raises(HTTPException) as caught:
            tokens.new_token(request, root, alice, 'one too many', 'full', None)
        assert caught.value.code == 409
        assert [e.action for e in audit.entries(root)][:2] == ['token_created', 'token_created']
