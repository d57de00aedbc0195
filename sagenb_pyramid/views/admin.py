"""The admin pages under ``/admin/``: users, groups, server settings, the audit log and the
running system (worker hosts and Sage processes).

Every view needs ``P.ADMIN`` (only ``role:admin`` has it, see ``AdminSection``); every
change is a POST (CSRF-checked for browsers, or a Bearer token).  Each page answers JSON
too (``Accept: application/json`` or a token); changes then take a JSON body or form
fields.  What the changes do (and the audit log entries, and the refusal to lose the
last active admin) is in ``services/admin.py``.
"""
import re

from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from ..auth.mail import mail_enabled
from ..resources import AdminGroup, AdminGroups, AdminSection, AdminUser, AdminUsers
from ..security import P
from ..services import admin, system
from ..services.admin import group_info, user_info
from ..services.links import ADMIN_LINK_SECONDS
from ..web import api_error, fmt_time, form_of, get_str, wants_json


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
    shown, total, elapsed = admin.find_users(root, query, page)
    pages = admin.pages(total)
    if wants_json(request):
        request.override_renderer = 'json'
        return {'users': [user_info(root, u) for u in shown], 'total': total,
                'page': page, 'pages': pages}
    return {'users': shown, 'total': total, 'page': page, 'pages': pages, 'query': query,
            'elapsed': elapsed, 'fmt_time': fmt_time, 'section': 'users',
            'mail_available': mail_enabled(request)}


@view_config(context=AdminUsers, request_method='POST', permission=P.ADMIN,
             renderer='admin_user_created.jinja2')
def add_user(context, request):
    """A new local account: invited by mail (a link to choose a password) when asked
    and the server sends mail, else with a temporary password shown once."""
    root = context.root
    body = form_of(request)
    user, password = admin.add_user(
        request, root, field(request, body, 'login', max_length=64),
        email=field(request, body, 'email', max_length=254),
        fullname=field(request, body, 'fullname', max_length=200),
        invite=flag(body, 'invite'), admin=flag(body, 'admin'))
    request.response.status = 201
    if wants_json(request):
        request.override_renderer = 'json'
        result = user_info(root, user, full=True)
        if password:
            result['temporary_password'] = password
        else:
            result['invited'] = user.email
        return result
    return {'user': user, 'password': password, 'section': 'users'}


@view_config(context=AdminUser, request_method='GET', permission=P.ADMIN,
             renderer='admin_user.jinja2')
def user_page(context, request):
    user = context.user
    if wants_json(request):
        request.override_renderer = 'json'
        return user_info(context.root, user, full=True)
    groups = sorted(admin.groups_of(context.root, user), key=lambda g: g.name.lower())
    return {'user': user, 'groups': groups, 'worksheets': len(user.worksheets()),
            'fmt_time': fmt_time, 'section': 'users', 'me': request.user,
            'reset_link': request.session.pop('admin_reset_link', None)}


@view_config(context=AdminUser, name='suspend', request_method='POST', permission=P.ADMIN,
             renderer='json')
def suspend_user(context, request):
    user = context.user
    admin.suspend_user(request, context.root, user)
    return done(request, '%s is suspended.' % user.login, user_url(request, user),
                user_info(context.root, user))


@view_config(context=AdminUser, name='reinstate', request_method='POST', permission=P.ADMIN,
             renderer='json')
def reinstate_user(context, request):
    user = context.user
    admin.reinstate_user(request, user)
    return done(request, '%s is reinstated.' % user.login, user_url(request, user),
                user_info(context.root, user))


@view_config(context=AdminUser, name='grant_admin', request_method='POST',
             permission=P.ADMIN, renderer='json')
def grant_admin(context, request):
    user = context.user
    admin.grant_admin(request, user)
    return done(request, '%s is an admin.' % user.login, user_url(request, user),
                user_info(context.root, user))


@view_config(context=AdminUser, name='revoke_admin', request_method='POST',
             permission=P.ADMIN, renderer='json')
def revoke_admin(context, request):
    user = context.user
    admin.revoke_admin(request, context.root, user)
    location = user_url(request, user)
    if user is request.user:
        location = request.application_url + '/'  # the admin pages are closed to them now
    return done(request, '%s is no longer an admin.' % user.login, location,
                user_info(context.root, user))


@view_config(context=AdminUser, name='reset_password', request_method='POST',
             permission=P.ADMIN, renderer='json')
def reset_password(context, request):
    """A single-use link to choose a new password: mailed, or shown to the admin
    (``services/admin.reset_password``)."""
    user = context.user
    how, what = admin.reset_password(request, context.root, user)
    if how == 'mailed':
        return done(request, 'A password reset link was mailed to %s.' % what,
                    user_url(request, user), {'mailed_to': what})
    if wants_json(request):
        return {'message': 'reset link made', 'reset_link': what,
                'expires_in': ADMIN_LINK_SECONDS}
    # Shown once on the user's page (the session is the admin's own signed cookie).
    request.session['admin_reset_link'] = what
    return HTTPFound(user_url(request, user))


@view_config(context=AdminUser, name='delete', request_method='POST', permission=P.ADMIN,
             renderer='json')
def delete_user(context, request):
    user = context.user
    body = form_of(request)
    worksheets = field(request, body, 'worksheets', '')
    heir = field(request, body, 'heir', max_length=64) if worksheets == 'handover' else ''
    detail = admin.delete_user(request, context.root, user, worksheets, heir)
    return done(request, '%s is deleted; %s.' % (user.login, detail),
                admin_url(request, 'users', ''), {'deleted': user.login})


# === groups ============================================================================

@view_config(context=AdminGroups, request_method='GET', permission=P.ADMIN,
             renderer='admin_groups.jinja2')
def groups_list(context, request):
    groups, counts = admin.groups_with_counts(context.root)
    if wants_json(request):
        request.override_renderer = 'json'
        return {'groups': [dict(group_info(g), members=counts[g.id]) for g in groups]}
    return {'groups': groups, 'counts': counts, 'section': 'groups'}


@view_config(context=AdminGroups, request_method='POST', permission=P.ADMIN,
             renderer='json')
def add_group(context, request):
    name = field(request, form_of(request), 'name', max_length=100)
    group = admin.add_group(request, context.root, name)
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
    admin.editable(group)  # before reading the form: a directory group's answer first
    name = field(request, form_of(request), 'name', max_length=100)
    old = admin.rename_group(request, context.root, group, name)
    return done(request, 'The group %s is now %s.' % (old, name), group_url(request, group),
                group_info(group))


@view_config(context=AdminGroup, name='delete', request_method='POST', permission=P.ADMIN,
             renderer='json')
def delete_group(context, request):
    group = context.group
    admin.delete_group(request, context.root, group)
    return done(request, 'The group %s is deleted.' % group.name,
                admin_url(request, 'groups', ''), {'deleted': group.id})


def member_of_form(context, request):
    admin.editable(context.group)  # before the form, as the other group changes
    return admin.member(context.root, field(request, form_of(request), 'login',
                                            max_length=64))


@view_config(context=AdminGroup, name='add_member', request_method='POST',
             permission=P.ADMIN, renderer='json')
def add_member(context, request):
    group = context.group
    user = member_of_form(context, request)
    admin.add_member(request, group, user)
    return done(request, '%s is a member of %s.' % (user.login, group.name),
                group_url(request, group), {'login': user.login})


@view_config(context=AdminGroup, name='remove_member', request_method='POST',
             permission=P.ADMIN, renderer='json')
def remove_member(context, request):
    group = context.group
    user = member_of_form(context, request)
    admin.remove_member(request, group, user)
    return done(request, '%s is no longer a member of %s.' % (user.login, group.name),
                group_url(request, group), {'login': user.login})


# === server settings ===================================================================

@view_config(context=AdminSection, name='settings', request_method='GET',
             permission=P.ADMIN, renderer='admin_settings.jinja2')
def settings_page(context, request):
    rows = admin.setting_rows(request)
    if wants_json(request):
        request.override_renderer = 'json'
        return {'settings': {row['key']: row['value'] for row in rows}}
    return {'rows': rows, 'section': 'settings'}


@view_config(context=AdminSection, name='settings', request_method='POST',
             permission=P.ADMIN, renderer='json')
def save_settings(context, request):
    changed = admin.save_settings(request, context.root, form_of(request),
                                  partial=request.content_type == 'application/json')
    message = ('Saved: %s.' % ', '.join(sorted(changed))) if changed else 'Nothing changed.'
    return done(request, message, admin_url(request, 'settings'), {'changed': changed})


# === the audit log =====================================================================

@view_config(context=AdminSection, name='audit', request_method='GET', permission=P.ADMIN,
             renderer='admin_audit.jinja2')
def audit_page(context, request):
    query = request.params.get('q', '').strip().lower()[:200]
    page = page_number(request)
    shown, more = admin.audit_page(context.root, query, page)
    if wants_json(request):
        request.override_renderer = 'json'
        return {'entries': [{'time': e.time, 'action': e.action, 'actor': e.actor,
                             'target': e.target, 'detail': e.detail, 'address': e.address}
                            for e in shown], 'page': page, 'more': more}
    return {'entries': shown, 'page': page, 'more': more, 'query': query,
            'fmt_time': fmt_time, 'section': 'audit'}


# === the running system ================================================================

SORT_KEYS = ('owner', 'name', 'host', 'memory', 'cpu_seconds', 'idle_seconds', 'running',
             'queued', 'started')


@view_config(context=AdminSection, name='system', request_method='GET',
             permission=P.ADMIN, renderer='admin_system.jinja2')
def system_page(context, request):
    """The worker hosts and the worksheets' Sage processes, sortable by any column."""
    found = system.running_system(request)
    sort = request.params.get('sort', 'memory')
    if sort not in SORT_KEYS:
        raise api_error(400, '"sort" must be one of %s' % ', '.join(SORT_KEYS))
    descending = request.params.get('order', 'desc') != 'asc'
    known = [p for p in found['processes'] if p[sort] is not None]
    known.sort(key=lambda p: p[sort], reverse=descending)
    # What is not known (memory of a process just ended) comes last either way.
    found['processes'] = known + [p for p in found['processes'] if p[sort] is None]
    if wants_json(request):
        request.override_renderer = 'json'
        return found
    return dict(found, section='system', sort=sort, descending=descending,
                fmt_time=fmt_time)


@view_config(context=AdminSection, name='stop', request_method='POST',
             permission=P.ADMIN, renderer='json')
def stop_process(context, request):
    """``worksheet``: ``"<owner id>/<number>"``: stop that worksheet's Sage process."""
    key = field(request, form_of(request), 'worksheet')
    if not re.fullmatch(r'[^/]{1,200}/[0-9]{1,9}', key):
        raise api_error(400, '"worksheet" must be "<owner id>/<number>"')
    system.stop_process(request, key)
    return done(request, 'Stopped the Sage process of worksheet %s.' % key,
                admin_url(request, 'system'), {'stopped': [key]})


@view_config(context=AdminSection, name='stop-idle', request_method='POST',
             permission=P.ADMIN, renderer='json')
def stop_idle(context, request):
    """Stop every process with no cell running or waiting, idle ``idle_seconds`` (60)."""
    raw = str(form_of(request).get('idle_seconds', '60'))
    if not re.fullmatch(r'[0-9]{1,7}', raw):
        raise api_error(400, '"idle_seconds" must be a whole number of seconds')
    stopped = system.stop_idle(request, int(raw))
    return done(request, 'Stopped %d idle Sage process%s.'
                % (len(stopped), '' if len(stopped) == 1 else 'es'),
                admin_url(request, 'system'), {'stopped': stopped})
