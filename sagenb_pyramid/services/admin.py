"""What the admin pages (``views/admin.py``) do: users (add, suspend, reinstate, admin
rights, password reset links, delete), groups (add, rename, delete, members), the
admin-editable server settings, and searching the user list and the audit log.

Each change is written to the audit log, which is why the changing functions take the
request (the log names its user and address; mail and stopping processes wait for the
commit); the readers take the root.  Refusals are ``api_error``s.  Nothing here lets
the notebook lose its last active admin.
"""
import itertools
import re
import secrets
import time

from .. import audit, server_settings
from ..aftercommit import after_commit
from ..auth.mail import mail_enabled
from ..auth.passwords import check_login_name, hash_password
from ..security import end_sessions
from ..web import api_error
from . import evaluation
from .accounts import check_email, login_taken
from .evaluation import discard_after_commit
from .links import admin_reset_link, send_invitation, send_reset_link

PER_PAGE = 50
GROUP_NAME_RE = re.compile(r'^[^\x00-\x1f<>/]{1,100}$')


def pages(total):
    return max(1, -(-total // PER_PAGE))


# === users =============================================================================

def user_info(root, user, full=False):
    """A user as the admin API shows it."""
    info = {'login': user.login, 'id': user.id, 'fullname': user.fullname or '',
            'email': user.email or '', 'is_admin': bool(user.is_admin),
            'suspended': bool(user.suspended), 'created': user.created}
    if full:
        info['groups'] = sorted(g.name for g in groups_of(root, user))
        info['worksheets'] = len(user.worksheets())
    return info


def groups_of(root, user):
    return [root.groups[g] for g in user.group_ids if g in root.groups]


def find_users(root, query, page):
    """``(users shown on page ``page``, how many match, seconds the search took)``: the
    users ``query`` finds, or all of them in login order."""
    start = (page - 1) * PER_PAGE
    started = time.perf_counter()
    if query:
        found = list(root.find_users(query))
        total, shown = len(found), found[start:start + PER_PAGE]
    else:
        # No search: a slice of the login-ordered BTree, without loading the others.
        total = len(root.home)
        shown = list(itertools.islice(root.home.values(), start, start + PER_PAGE))
    return shown, total, time.perf_counter() - started


def refuse_last_admin(root, user, doing):
    """409 if taking ``user``'s admin rights away would leave no active admin."""
    if user.is_admin and not user.suspended and \
            not any(u is not user for u in root.active_admins()):
        raise api_error(409, 'cannot %s %s: they are the last active admin; make someone '
                             'else an admin first' % (doing, user.login))


def add_user(request, root, login, email='', fullname='', invite=False, admin=False):
    """A new local account: invited by mail (a link to choose a password) with
    ``invite``, else with a temporary password.  Returns ``(user, temporary password or
    None)``; the password is shown once and kept nowhere."""
    problem = check_login_name(login)
    if problem:
        raise api_error(400, problem)
    if login_taken(root, login):
        raise api_error(409, 'the username %s is taken (or differs from one only in case)'
                        % login)
    if email and check_email(email):
        raise api_error(400, check_email(email))
    if invite and not mail_enabled(request):
        raise api_error(409, 'this server sends no mail (sagenb.mail.host): add the user '
                             'with a temporary password instead')
    if invite and not email:
        raise api_error(400, 'an invitation needs the e-mail address')
    password = None if invite else secrets.token_urlsafe(12)
    user = root.add_user(login, hash_password(password) if password else None,
                         is_admin=admin, email=email, fullname=fullname)
    if invite:
        send_invitation(request, user)
    audit.record(request, 'user_added', login, ', '.join(
        ['admin'] * bool(user.is_admin) + ['invited by mail'] * invite))
    return user, password


def suspend_user(request, root, user):
    refuse_last_admin(root, user, 'suspend')
    if not user.suspended:
        user.suspended = True
        # Sessions of before the suspension stay dead after a reinstatement.
        end_sessions(user)
        audit.record(request, 'user_suspended', user.login)


def reinstate_user(request, user):
    if user.suspended:
        user.suspended = False
        audit.record(request, 'user_reinstated', user.login)


def grant_admin(request, user):
    if not user.is_admin:
        user.is_admin = True
        audit.record(request, 'admin_granted', user.login)


def revoke_admin(request, root, user):
    if user.is_admin:
        refuse_last_admin(root, user, 'revoke the admin rights of')
        user.is_admin = False
        audit.record(request, 'admin_revoked', user.login)


def reset_password(request, root, user):
    """A single-use link to choose a new password (``links.py``, ``/reset``): mailed to
    the user when the server sends mail and they have an address (returns ``('mailed',
    address)``), else for the admin to pass on (``('link', link)``).  The current
    password works until the link is used."""
    if user.auth_source != 'local':
        raise api_error(409, '%s logs in through %s: the password is not kept here'
                        % (user.login, user.auth_source))
    if mail_enabled(request) and user.email:
        if not send_reset_link(request, user, root):
            raise api_error(429, 'a reset link was mailed to %s less than a minute ago'
                            % user.login)
        audit.record(request, 'password_reset_link', user.login, 'mailed')
        return 'mailed', user.email
    link = admin_reset_link(request, root, user)
    audit.record(request, 'password_reset_link', user.login, 'shown to the admin')
    return 'link', link


def delete_user(request, root, user, worksheets, heir_login=''):
    """Delete ``user`` with their worksheets (``worksheets='delete'``) or handing them to
    the user ``heir_login`` (``'handover'``); their processes stop after the commit.
    Returns what became of the worksheets, as the audit log and the page say it."""
    if user is request.user:
        raise api_error(409, 'you cannot delete your own account')
    refuse_last_admin(root, user, 'delete')
    heir = None
    if worksheets == 'handover':
        heir = root.user_by_login(heir_login)
        if heir is None:
            raise api_error(400, 'no user %r to hand the worksheets to' % heir_login
                            if heir_login else 'name the user who gets the worksheets')
        if heir is user:
            raise api_error(400, 'the worksheets must go to another user')
    elif worksheets != 'delete':
        raise api_error(400, '"worksheets" must be "delete" or "handover"')
    count = len(user.worksheets())
    keys = root.delete_user(user, heir)
    if user.doc_worksheet is not None:  # the process of their manuals' examples
        keys.append(evaluation.worksheet_key(user.doc_worksheet))
    discard_after_commit(request, keys)
    detail = ('%d worksheet(s) handed to %s' % (count, heir.login) if heir is not None
              else '%d worksheet(s) deleted' % count)
    audit.record(request, 'user_deleted', user.login, detail)
    return detail


# === groups ============================================================================

def group_info(group, members=None):
    info = {'id': group.id, 'name': group.name, 'source': group.source}
    if members is not None:
        info['members'] = members
    return info


def groups_with_counts(root):
    """Every group (local ones first, by name) and ``{group id: number of members}``."""
    counts = dict.fromkeys(root.groups.keys(), 0)
    for user in root.users_by_id.values():
        for group_id in user.group_ids:
            if group_id in counts:
                counts[group_id] += 1
    groups = sorted(root.groups.values(), key=lambda g: (g.source != 'local', g.name.lower()))
    return groups, counts


def check_group_name(root, name, group=None):
    if not GROUP_NAME_RE.match(name) or not name.strip():
        raise api_error(400, 'a group name has 1 to 100 characters, without "/", "<", ">"')
    other = root.group_by_name(name, 'local')
    if other is not None and other is not group:
        raise api_error(409, 'there is already a group named %s' % name)


def editable(group):
    """Groups from a directory (LDAP, OpenID Connect) are rewritten at each login of
    their members: changing them by hand would not last."""
    if group.source != 'local':
        raise api_error(409, 'the group %s comes from %s and is synced at each login of '
                             'its members; change it there' % (group.name, group.source))


def add_group(request, root, name):
    check_group_name(root, name)
    group = root.add_group(name, 'local')
    audit.record(request, 'group_added', name)
    return group


def rename_group(request, root, group, name):
    """Returns the old name."""
    editable(group)
    check_group_name(root, name, group)
    old, group.name = group.name, name
    audit.record(request, 'group_renamed', name, 'was ' + old)
    return old


def delete_group(request, root, group):
    # Deleting a directory group is allowed: it cleans up a group the directory dropped
    # (it comes back if a member's next login still names it).
    root.delete_group(group)
    audit.record(request, 'group_deleted', group.name,
                 '' if group.source == 'local' else 'from ' + group.source)


def member(root, login):
    """The user a membership change names (400 if none)."""
    user = root.user_by_login(login)
    if user is None:
        raise api_error(400, 'no user named %r' % login if login else 'name a user')
    return user


def add_member(request, group, user):
    editable(group)
    if group.id not in user.group_ids:
        user.group_ids.add(group.id)
        audit.record(request, 'group_member_added', group.name, user.login)


def remove_member(request, group, user):
    editable(group)
    if group.id in user.group_ids:
        user.group_ids.remove(group.id)
        audit.record(request, 'group_member_removed', group.name, user.login)


# === server settings ===================================================================

def form_kind(setting):
    """How the admin page shows a setting: a checkbox, a whole number or a choice."""
    return {'bool': 'bool', 'int': 'int', 'float': 'int'}.get(setting.kind.name, 'choice')


def setting_rows(request):
    """Every admin-editable setting with its current value, for the page."""
    rows = []
    for key, setting in server_settings.EDITABLE.items():
        kind = form_kind(setting)
        rows.append({'key': key, 'kind': kind, 'description': setting.help,
                     'choices': list(setting.kind.choices) if kind == 'choice' else None,
                     'value': setting.text(server_settings.get(request, key)),
                     'stored': key in request.root.server_settings})
    return rows


def parse_setting(setting, raw):
    """The text to store for the form's (or JSON's) ``raw`` value of ``setting``."""
    key, kind = setting.key, form_kind(setting)
    if kind == 'bool':
        if isinstance(raw, bool):
            return 'true' if raw else 'false'
        if raw in ('true', 'on', '1', 'yes'):
            return 'true'
        if raw in ('false', 'off', '0', 'no', '', None):
            return 'false'
        raise api_error(400, '%s must be true or false' % key)
    raw = '' if raw is None else str(raw).strip()
    if kind == 'int':
        if not raw.isdigit() or len(raw) > 12:
            raise api_error(400, '%s must be a whole number (0 or more)' % key)
        return str(int(raw))
    choices = setting.kind.choices
    if raw not in choices:
        raise api_error(400, '%s must be one of %s' % (key, ', '.join(choices)))
    return raw


def save_settings(request, root, body, partial):
    """Store the settings ``body`` gives (``partial``: a JSON body, which names only
    what changes; a form sends every setting, and an unchecked checkbox sends nothing,
    so there absent means false).  Returns ``{key: new text}`` of those that changed."""
    unknown = [k for k in body if k not in server_settings.EDITABLE and k != 'csrf_token']
    if unknown:
        raise api_error(400, 'not a setting that can be changed here: %s'
                        % ', '.join(sorted(unknown)))
    changed = {}
    for key, setting in server_settings.EDITABLE.items():
        if partial and key not in body:
            continue
        if key not in body and form_kind(setting) != 'bool':
            continue
        value = parse_setting(setting, body.get(key))
        if value != setting.text(server_settings.get(request, key)):
            server_settings.set_value(root, key, value)
            changed[key] = value
    for key, value in changed.items():
        audit.record(request, 'setting_changed', key, value)
    # Worker settings: applied at once on this app server; other app servers and worker
    # hosts read them from the database within ``SETTINGS_INTERVAL`` (workers/hosts.py,
    # workers/registry.py).
    live = {server_settings.EDITABLE[key].attribute: server_settings.EDITABLE[key].parse(value)
            for key, value in changed.items() if key.startswith('sagenb.workers.')}
    workers = request.workers
    if live:
        after_commit(request, lambda: workers.apply_settings(live))
    return changed


# === the audit log =====================================================================

def audit_matches(entry, query):
    return any(query in (value or '').lower() for value in (
        entry.action, entry.actor, entry.target, entry.detail, entry.address))


def audit_page(root, query, page):
    """``(entries on page ``page`` of those matching ``query`` (lower case), newest
    first; whether there is a next page)``."""
    start = (page - 1) * PER_PAGE
    found = (e for e in audit.entries(root) if not query or audit_matches(e, query))
    # One entry past the page says whether there is a next page, without counting all.
    shown = list(itertools.islice(found, start, start + PER_PAGE + 1))
    return shown[:PER_PAGE], len(shown) > PER_PAGE
