from setuptools import find_packages, setup

requires = [
    'pyramid>=2.0,<3',
    'pyramid_jinja2>=2.10',
    'pyramid_tm>=2.5',
    'pyramid_retry>=2.1',
    'pyramid_zodbconn>=0.8',
    'ZODB>=6.0',
    'ZEO>=6.0',
    'zodburi>=2.6',
    # PostgreSQL for large sites (postgres:// URIs); psycopg2-binary installs from wheels.
    'RelStorage>=4.0',
    'psycopg2-binary>=2.9',
    'transaction>=4.0',
    'BTrees>=5.0',
    'waitress>=3.0',
    'velruse>=1.1.1',
    'requests>=2.28',  # OAuth providers talk to the identity provider
    'joserfc>=1.0',  # OpenID Connect ID token verification (JWKS, JWT claims)
    'ldap3>=2.9',
    'argon2-cffi>=23.1',
    'legacycrypt>=0.3',
    'pyramid_mailer>=0.15',
    'jupyter_client>=8.0,<9',
    # workers/sagekernel.py relies on the insides of its app, OutStream and IOPubThread
    'ipykernel>=7.0,<8',
    'nbformat>=5.7',  # .ipynb import and export
    'jsonschema>=4.0',  # nbformat's schema checks a notebook's metadata (formats/ipynb.py)
    'lxml>=5.0',  # the pages of Sage's manuals at /doc/ (services/doc.py)
    'merge3>=0.0.15',  # three-way merges of concurrent edits of a cell (services/live.py)
    'prometheus-client>=0.20',  # /metrics (metrics.py)
    'psutil>=5.9',  # memory and CPU time of Sage processes (the admin's system page, metrics)
    # The static exports (formats/textcells.py, htmlpage.py, latex.py): Markdown as the
    # page reads it, sanitized HTML, math as MathML, Markdown/HTML as LaTeX.
    'markdown-it-py[linkify]>=3.0',
    'nh3>=0.2.17',
    'latex2mathml>=3.77',
    'mistletoe>=1.3',
    'pylatexenc>=2.10',
    'markdownify>=0.13',
    'passagemath-standard>=10.6,<10.9',
    'passagemath-repl>=10.6,<10.9',
]

tests_require = [
    'pytest>=8',
    'pytest-xdist>=3.5',  # make test runs the suite in two processes
    'WebTest>=3.0',
    'aiosmtpd>=1.4',
    'authlib>=1.6',  # the local OpenID Connect provider of tests/functional/test_oauth.py
    'playwright>=1.45',
    'hypothesis>=6.100',  # the importers fuzzed (tests/functional/transfer/test_import_fuzz.py)
    'schemathesis>=4.0',  # tests/functional/api/test_schema.py fuzzes the API from its OpenAPI
    'pypdf>=5',  # the text of download.pdf read back (tests/unit/formats/test_latex.py)
    'ruff',
]

setup(
    name='sagenb_pyramid',
    version='0.1.0',
    description='A multi-user Sage notebook server on Pyramid traversal and ZODB',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.10',
    packages=find_packages(exclude=['tests', 'tests.*']),
    include_package_data=True,
    package_data={'sagenb_pyramid': ['templates/*.jinja2', 'static/*', 'static/**/*']},
    zip_safe=False,
    install_requires=requires,
    extras_require={'testing': tests_require},
    entry_points={
        'paste.app_factory': ['main = sagenb_pyramid:main'],
        'paste.server_runner': ['main = sagenb_pyramid.server:serve'],
        'console_scripts': ['sagenb-admin = sagenb_pyramid.scripts.admin:main',
                            'sagenb-worker = sagenb_pyramid.scripts.worker:main'],
    },
)
