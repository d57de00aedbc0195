"""The ``.ini`` a server runs with, read by the commands (``sagenb-admin``,
``sagenb-worker``) without building the application: its logging, and its
``[app:main]`` settings as PasteDeploy hands them to the application factory.

plaster's ``get_loader`` picks a loader by scanning the entry points of every installed
distribution (about 0.2 s each call, 40 % of an admin command); a PasteDeploy ``.ini``
is read by plaster_pastedeploy's loader whatever that scan finds, so it is made
directly, and any other URI still goes through plaster.
"""
import os

import plaster
import plaster_pastedeploy

from ..settings import SettingsError

# The schemes plaster_pastedeploy registers for files (``egg:`` URIs go through plaster).
PASTEDEPLOY_FILES = ('file+ini', 'pastedeploy', 'pastedeploy+ini')


def loader(config_uri):
    """The plaster loader of ``config_uri``; a SettingsError if there is no such file."""
    uri = plaster.parse_uri(config_uri)
    if uri.scheme not in PASTEDEPLOY_FILES:
        return plaster.get_loader(config_uri, protocols=['wsgi'])
    found = plaster_pastedeploy.Loader(uri)
    if not os.path.isfile(found.filepath):
        raise SettingsError('no configuration file %s' % found.filepath)
    return found


def app_settings(config, options):
    """``(global_config, settings)`` of ``[app:main]`` as ``pserve CONFIG name=value...``
    passes them to ``sagenb_pyramid.main``: the ``name=value`` words are PasteDeploy
    globals (``%(name)s`` in the file, ``data_dir``), not settings."""
    conf = config.get_wsgi_app_settings('main', defaults=options)
    return dict(conf.global_conf), dict(conf)
