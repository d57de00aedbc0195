"""The admin pages under ``/admin/``: users, groups, server settings and the audit log.

Every view needs ``P.ADMIN`` (only ``role:admin`` has it, see ``AdminSection``); every
change is a POST (CSRF-checked for browsers, or a Bearer token) and is written to the
audit log.  Each page answers JSON too (``Accept: application/json`` or a token);
changes then take a JSON body or form fields.  Nothing here lets the notebook lose its
last active admin.
"""
import itertools
import re
import secrets
import time

from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from .. import audit, server_settings
from ..aftercommit import after_commit
from ..auth.mail import mail_enabled
from ..auth.passwords import check_login_name, hash_password
from ..resources import AdminGroup, AdminGroups, AdminSection, AdminUser, AdminUsers
from ..security import P, end_sessions
from ..services.accounts import check_email, login_taken
from ..services.evaluation import discard_after_commit
from ..services.links import (ADMIN_LINK_SECONDS, admin_reset_link, send_invitation,
                              send_reset_link)
from ..web import api_error, fmt_time, form_of, get_str, wants_json

PER_PAGE = 50
GROUP_NAME_RE = re.compile(r'^[^\x00-\x1f<>/]{1,100}$')


# === helpers ===========================================================================

def field(request, body, key, default='', max_length=200):
    value = get_str(body, key, default, max_length=max_length) if isinstance(body, dict) \
        else body.get(key, default)
    if value is not None and len(value) > max_length:
        raise api_error(400, '"%s" is longer than %d characters' % (key, max_length))
    return (value or '').strip()


def flag(body, key):
    value = body.get(key)
    if isinstance(value, bool):
        return value
    return value in ('1', 'true', 'on', 'yes')


def page_number(request):
    raw = request.params.get('page', '1')
    # ASCII digits, and few enough of them for islice (str.isdigit also takes "²").
    if not re.fullmatch(r'[0-9]{1,9}', raw) or int(raw) < 1:
        raise api_error(400, '"page" must be a positive whole number')
    return int(raw)


def done(request, message, location, data=None, status=200):
    """A finished action: JSON for scripts, a flash and a redirect for the page."""
    if wants_json(request):
        request.response.status = status
        result = {'message': message}
        result.update(data or {})
        return result
    request.session.flash(message)
    return HTTPFound(location)


def admin_url(request, *parts, **query):
    return request.resource_url(request.root['admin'], *parts, query=query or None)


def user_url(request, user):
    return admin_url(request, 'users', user.login, '')


def group_url(request, group):
    return admin_url(request, 'groups', group.id, '')


def user_info(root, user, full=False):
    info = {'login': user.login, 'id': user.id, 'fullname': user.fullname or '',
            'email': user.email or '', 'is_admin': bool(user.is_admin),
            'suspended': bool(user.suspended), 'created': getattr(user, 'created', None)}
    if full:
        info['groups'] = sorted(root.groups[g].name for g in user.group_ids
                                if g in root.groups)
        info['worksheets'] = len(user.worksheets())
    return info


def group_info(group, members=None):
    info = {'id': group.id, 'name': group.name, 'source': group.source}
    if members is not None:
        info['members'] = members
    return info


def refuse_last_admin(root, user, doing):
    """409 if taking ``user``'s admin rights away would leave no active admin."""
    if user.is_admin and not user.suspended and \
            not any(u is not user for u in root.active_admins()):
        raise api_error(409, 'cannot %s %s: they are the last active admin; make someone '
                             'else an admin first' % (doing, user.login))


# === the section =======================================================================

@view_config(context=AdminSection, request_method='GET', permission=P.ADMIN)
def admin_index(context, request):
    return HTTPFound(admin_url(request, 'users', ''))


# === users =============================================================================

@view_config(context=AdminUsers, request_method='GET', permission=P.ADMIN,
             renderer='admin_users.jinja2')
def users_list(context, request):
    root = context.root
    query = request.params.get('q', '').strip()[:200]
    page = page_number(request)
    start = (page - 1) * PER_PAGE
    started = time.perf_counter()
    if query:
        found = list(root.find_users(query))
        total, shown = len(found), found[start:start + PER_PAGE]
    else:
        # No search: a slice of the login-ordered BTree, without loading the others.
        total = len(root.home)
        shown = list(itertools.islice(root.home.values(), start, start + PER_PAGE))
    elapsed = time.perf_counter() - started
    pages = max(1, -(-total // PER_PAGE))
    if wants_json(request):
        request.override_renderer = 'json'
        return {'users': [user_info(root, u) for u in shown], 'total': total,
                'page': page, 'pages': pages}
    return {'users': shown, 'total': total, 'page': page, 'pages': pages, 'query': query,
            'elapsed': elapsed, 'fmt_time': fmt_time, 'section': 'users',
            'mail_available': mail_available(request)}


@view_config(context=AdminUsers, request_method='POST', permission=P.ADMIN,
             renderer='admin_user_created.jinja2')
def add_user(context, request):
    """A new local account: invited by mail (a link to choose a password) when asked
    and the server sends mail, else with a temporary password shown once."""
    root = context.root
    body = form_of(request)
    login = field(request, body, 'login', max_length=64)
    email = field(request, body, 'email', max_length=254)
    fullname = field(request, body, 'fullname', max_length=200)
    invite = flag(body, 'invite')
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
                         is_admin=flag(body, 'admin'), email=email, fullname=fullname)
    if invite:
        send_invitation(request, user)
    audit.record(request, 'user_added', login, ', '.join(
        ['admin'] * bool(user.is_admin) + ['invited by mail'] * invite))
    request.response.status = 201
    if wants_json(request):
        request.override_renderer = 'json'
        result = user_info(root, user, full=True)
        if password:
            result['temporary_password'] = password
        else:
            result['invited'] = email
        return result
    return {'user': user, 'password': password, 'section': 'users'}


@view_config(context=AdminUser, request_method='GET', permission=P.ADMIN,
             renderer='admin_user.jinja2')
def user_page(context, request):
    user = context.user
    if wants_json(request):
        request.override_renderer = 'json'
        return user_info(context.root, user, full=True)
    groups = sorted((context.root.groups[g] for g in user.group_ids
                     if g in context.root.groups), key=lambda g: g.name.lower())
    return {'user': user, 'groups': groups, 'worksheets': len(user.worksheets()),
            'fmt_time': fmt_time, 'section': 'users', 'me': request.user,
            'reset_link': request.session.pop('admin_reset_link', None)}


@view_config(context=AdminUser, name='suspend', request_method='POST', permission=P.ADMIN,
             renderer='json')
def suspend_user(context, request):
    user = context.user
    refuse_last_admin(context.root, user, 'suspend')
    if not user.suspended:
        user.suspended = True
        # Sessions of before the suspension stay dead after a reinstatement.
        end_sessions(user)
        audit.record(request, 'user_suspended', user.login)
    return done(request, '%s is suspended.' % user.login, user_url(request, user),
                user_info(context.root, user))


@view_config(context=AdminUser, name='reinstate', request_method='POST', permission=P.ADMIN,
             renderer='json')
def reinstate_user(context, request):
    user = context.user
    if user.suspended:
        user.suspended = False
        audit.record(request, 'user_reinstated', user.login)
    return done(request, '%s is reinstated.' % user.login, user_url(request, user),
                user_info(context.root, user))


@view_config(context=AdminUser, name='grant_admin', request_method='POST',
             permission=P.ADMIN, renderer='json')
def grant_admin(context, request):
    user = context.user
    if not user.is_admin:
        user.is_admin = True
        audit.record(request, 'admin_granted', user.login)
    return done(request, '%s is an admin.' % user.login, user_url(request, user),
                user_info(context.root, user))


@view_config(context=AdminUser, name='revoke_admin', request_method='POST',
             permission=P.ADMIN, renderer='json')
def revoke_admin(context, request):
    user = context.user
    if user.is_admin:
        refuse_last_admin(context.root, user, 'revoke the admin rights of')
        user.is_admin = False
        audit.record(request, 'admin_revoked', user.login)
    location = user_url(request, user)
    if user is request.user:
        location = request.application_url + '/'  # the admin pages are closed to them now
    return done(request, '%s is no longer an admin.' % user.login, location,
                user_info(context.root, user))


@view_config(context=AdminUser, name='reset_password', request_method='POST',
             permission=P.ADMIN, renderer='json')
def reset_password(context, request):
    """A single-use link to choose a new password (``services/links.py``, ``/reset``):
    mailed to the user when the server sends mail and they have an address, else shown
    to the admin to pass on.  The current password works until the link is used."""
    user = context.user
    if getattr(user, 'auth_source', 'local') != 'local':
        raise api_error(409, '%s logs in through %s: the password is not kept here'
                        % (user.login, user.auth_source))
    if mail_enabled(request) and user.email:
        if not send_reset_link(request, user):
            raise api_error(429, 'a reset link was mailed to %s less than a minute ago'
                            % user.login)
        audit.record(request, 'password_reset_link', user.login, 'mailed')
        return done(request, 'A password reset link was mailed to %s.' % user.email,
                    user_url(request, user), {'mailed_to': user.email})
    link = admin_reset_link(request, context.root, user)
    audit.record(request, 'password_reset_link', user.login, 'shown to the admin')
    if wants_json(request):
        return {'message': 'reset link made', 'reset_link': link,
                'expires_in': ADMIN_LINK_SECONDS}
    # Shown once on the user's page (the session is the admin's own signed cookie).
    request.session['admin_reset_link'] = link
    return HTTPFound(user_url(request, user))


@view_config(context=AdminUser, name='delete', request_method='POST', permission=P.ADMIN,
             renderer='json')
def delete_user(context, request):
    root, user = context.root, context.user
    body = form_of(request)
    if user is request.user:
        raise api_error(409, 'you cannot delete your own account')
    refuse_last_admin(root, user, 'delete')
    worksheets = field(request, body, 'worksheets', '')
    heir = None
    if worksheets == 'handover':
        heir_login = field(request, body, 'heir', max_length=64)
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
    discard_after_commit(request, keys)
    detail = ('%d worksheet(s) handed to %s' % (count, heir.login) if heir is not None
              else '%d worksheet(s) deleted' % count)
    audit.record(request, 'user_deleted', user.login, detail)
    return done(request, '%s is deleted; %s.' % (user.login, detail),
                admin_url(request, 'users', ''), {'deleted': user.login})


# === groups ============================================================================

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


@view_config(context=AdminGroups, request_method='GET', permission=P.ADMIN,
             renderer='admin_groups.jinja2')
def groups_list(context, request):
    root = context.root
    counts = dict.fromkeys(root.groups.keys(), 0)
    for user in root.users_by_id.values():
        for group_id in user.group_ids:
            if group_id in counts:
                counts[group_id] += 1
    groups = sorted(root.groups.values(), key=lambda g: (g.source != 'local', g.name.lower()))
    if wants_json(request):
        request.override_renderer = 'json'
        return {'groups': [dict(group_info(g), members=counts[g.id]) for g in groups]}
    return {'groups': groups, 'counts': counts, 'section': 'groups'}


@view_config(context=AdminGroups, request_method='POST', permission=P.ADMIN,
             renderer='json')
def add_group(context, request):
    body = form_of(request)
    name = field(request, body, 'name', max_length=100)
    check_group_name(context.root, name)
    group = context.root.add_group(name, 'local')
    audit.record(request, 'group_added', name)
    return done(request, 'The group %s is created.' % name, group_url(request, group),
                group_info(group, []), status=201)


@view_config(context=AdminGroup, request_method='GET', permission=P.ADMIN,
             renderer='admin_group.jinja2')
def group_page(context, request):
    members = sorted(context.root.group_members(context.group), key=lambda u: u.login)
    if wants_json(request):
        request.override_renderer = 'json'
        return group_info(context.group, [u.login for u in members])
    return {'group': context.group, 'members': members, 'section': 'groups'}


@view_config(context=AdminGroup, name='rename', request_method='POST', permission=P.ADMIN,
             renderer='json')
def rename_group(context, request):
    group = context.group
    editable(group)
    name = field(request, form_of(request), 'name', max_length=100)
    check_group_name(context.root, name, group)
    old, group.name = group.name, name
    audit.record(request, 'group_renamed', name, 'was ' + old)
    return done(request, 'The group %s is now %s.' % (old, name), group_url(request, group),
                group_info(group))


@view_config(context=AdminGroup, name='delete', request_method='POST', permission=P.ADMIN,
             renderer='json')
def delete_group(context, request):
    # Deleting a directory group is allowed: it cleans up a group the directory dropped
    # (it comes back if a member's next login still names it).
    group = context.group
    context.root.delete_group(group)
    audit.record(request, 'group_deleted', group.name,
                 '' if group.source == 'local' else 'from ' + group.source)
    return done(request, 'The group %s is deleted.' % group.name,
                admin_url(request, 'groups', ''), {'deleted': group.id})


def member_of_form(context, request):
    login = field(request, form_of(request), 'login', max_length=64)
    user = context.root.user_by_login(login)
    if user is None:
        raise api_error(400, 'no user named %r' % login if login else 'name a user')
    return user


@view_config(context=AdminGroup, name='add_member', request_method='POST',
             permission=P.ADMIN, renderer='json')
def add_member(context, request):
    group = context.group
    editable(group)
    user = member_of_form(context, request)
    if group.id not in user.group_ids:
        user.group_ids.add(group.id)
        audit.record(request, 'group_member_added', group.name, user.login)
    return done(request, '%s is a member of %s.' % (user.login, group.name),
                group_url(request, group), {'login': user.login})


@view_config(context=AdminGroup, name='remove_member', request_method='POST',
             permission=P.ADMIN, renderer='json')
def remove_member(context, request):
    group = context.group
    editable(group)
    user = member_of_form(context, request)
    if group.id in user.group_ids:
        user.group_ids.remove(group.id)
        audit.record(request, 'group_member_removed', group.name, user.login)
    return done(request, '%s is no longer a member of %s.' % (user.login, group.name),
                group_url(request, group), {'login': user.login})


# === server settings ===================================================================

def form_kind(setting):
    """How the admin page shows a setting: a checkbox, a whole number or a choice."""
    return {'bool': 'bool', 'int': 'int', 'float': 'int'}.get(setting.kind.name, 'choice')


def setting_rows(request):
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


@view_config(context=AdminSection, name='settings', request_method='GET',
             permission=P.ADMIN, renderer='admin_settings.jinja2')
def settings_page(context, request):
    rows = setting_rows(request)
    if wants_json(request):
        request.override_renderer = 'json'
        return {'settings': {row['key']: row['value'] for row in rows}}
    return {'rows': rows, 'section': 'settings'}


@view_config(context=AdminSection, name='settings', request_method='POST',
             permission=P.ADMIN, renderer='json')
def save_settings(context, request):
    as_json = request.content_type == 'application/json'
    body = form_of(request)
    unknown = [k for k in body if k not in server_settings.EDITABLE and k != 'csrf_token']
    if unknown:
        raise api_error(400, 'not a setting that can be changed here: %s'
                        % ', '.join(sorted(unknown)))
    changed = {}
    for key, setting in server_settings.EDITABLE.items():
        if as_json and key not in body:
            continue
        if key not in body and form_kind(setting) != 'bool':
            continue
        # An unchecked checkbox sends nothing: on the form, absent means false.
        value = parse_setting(setting, body.get(key))
        if value != setting.text(server_settings.get(request, key)):
            server_settings.set_value(context.root, key, value)
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
    message = ('Saved: %s.' % ', '.join(sorted(changed))) if changed else 'Nothing changed.'
    return done(request, message, admin_url(request, 'settings'), {'changed': changed})


# === the audit log =====================================================================

def audit_matches(entry, query):
    return any(query in (value or '').lower() for value in (
        entry.action, entry.actor, entry.target, entry.detail, entry.address))


@view_config(context=AdminSection, name='audit', request_method='GET', permission=P.ADMIN,
             renderer='admin_audit.jinja2')
def audit_page(context, request):
    query = request.params.get('q', '').strip().lower()[:200]
    page = page_number(request)
    start = (page - 1) * PER_PAGE
    found = (e for e in audit.entries(context.root) if not query or audit_matches(e, query))
    # One entry past the page says whether there is a next page, without counting all.
    shown = list(itertools.islice(found, start, start + PER_PAGE + 1))
    more = len(shown) > PER_PAGE
    shown = shown[:PER_PAGE]
    if wants_json(request):
        request.override_renderer = 'json'
        return {'entries': [{'time': e.time, 'action': e.action, 'actor': e.actor,
                             'target': e.target, 'detail': e.detail, 'address': e.address}
                            for e in shown], 'page': page, 'more': more}
    return {'entries': shown, 'page': page, 'more': more, 'query': query,
            'fmt_time': fmt_time, 'section': 'audit'}


def mail_available(request):
    return mail_enabled(request)
