"""A small manual in Sphinx's layout, as Sage's documentation build writes it, for the
tests of ``/doc/`` (pointed to by ``sagenb.doc.path``): the suite does not depend on the
450 MB package.

``html/en/index.html`` (the top, with its one-word ``searchindex.js``), a tutorial
(``en/tutorial``: two pages) and a reference manual (``en/reference/calculus``: a module
page with examples, an image, a script and a stylesheet), each with the
``searchindex.js`` Sphinx writes (JSON in ``Search.setIndex(...)``).
"""
import json
import os

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} &#8212; Sage Documentation</title>
<link rel="stylesheet" type="text/css" href="{up}_static/basic.css" />
<script src="{up}_static/doctools.js"></script>
<script>window.DOCUMENTATION_OPTIONS = {{}}; document.title = "owned";</script>
</head><body>
<div class="related" role="navigation"><ul><li><a href="{up}index.html">Home</a></li></ul></div>
<div class="document"><div class="documentwrapper"><div class="bodywrapper">
<div class="body" role="main">
{body}
</div></div></div></div>
<div class="sphinxsidebar" role="navigation">sidebar text</div>
</body></html>
"""


def example(*lines):
    """An example block as Sphinx highlights it (prompts in ``gp`` spans)."""
    spans = []
    for line in lines:
        if line.startswith(('sage: ', '....: ')):
            spans.append('<span class="gp">%s</span><span class="n">%s</span>'
                         % (line[:6], line[6:].replace('&', '&amp;').replace('<', '&lt;')))
        else:
            spans.append('<span class="go">%s</span>' % line.replace('<', '&lt;'))
    return ('<div class="highlight-ipycon notranslate"><div class="highlight"><pre>'
            '<span></span>%s\n</pre></div></div>' % '\n'.join(spans))


TOUR = PAGE.format(title='A first tour', up='../', body="""
<section id="a-first-tour"><h1>A first tour<a class="headerlink" href="#a-first-tour">¶</a></h1>
<p>Sage adds numbers, <span class="math notranslate nohighlight">\\(2+2\\)</span>:</p>
""" + example('sage: 2 + 2', '4') + """
<p>Define a variable and use it in the next example
<a href="algebra.html#solving">(see solving)</a>
<img src="_images/plot.png" alt="a plot"/>
<a href="../../../../etc/passwd">outside</a>
<a href="https://www.sagemath.org/">Sage's site</a>
<a href="javascript:alert(1)">bad</a>
<img src="x.png" onerror="document.title='owned-by-img'"/></p>
""" + example('sage: a = 6', 'sage: b = 7') + """
<p>Then:</p>
""" + example('sage: a * b', '42') + """
<p>A loop on two lines:</p>
""" + example('sage: for i in range(3):', '....:     print(i * i)', '0', '1', '4') + """
<p>Python code without prompts is no example:</p>
<div class="highlight-python notranslate"><div class="highlight"><pre>print("not an example")</pre></div></div>
</section>
""")

ALGEBRA = PAGE.format(title='Basic algebra', up='../', body="""
<section id="solving"><h1>Solving equations</h1>
""" + example('sage: x = var("x")', 'sage: solve(x^2 == 4, x)', '[x == -2, x == 2]') + """
</section>
""")

FUNCTIONAL = PAGE.format(title='Functional notation', up='../../../', body="""
<section id="module-sage.calculus.functional"><h1>Functional notation</h1>
<dl class="py function"><dt class="sig" id="sage.calculus.functional.diff">
<span class="sig-prename">sage.calculus.functional.</span><span class="sig-name">diff</span>(<em>f</em>)</dt>
<dd><p>The derivative of <span class="math notranslate nohighlight">\\(f\\)</span>.</p>
""" + example('sage: diff(x^3, x)', '3*x^2') + """
</dd></dl>
<dl class="py function"><dt class="sig" id="sage.calculus.functional.integral">
<span class="sig-name">integral</span>(<em>f</em>)</dt><dd><p>An integral.</p></dd></dl>
</section>
""")


def search_index(docnames, titles, objects=None):
    index = {
        'docnames': docnames, 'filenames': [d + '.rst' for d in docnames],
        'titles': titles, 'terms': {'sage': 0}, 'objects': objects or {},
        'objtypes': {'0': 'py:module', '1': 'py:function', '2': 'py:class'},
        'objnames': {'0': ['py', 'module', 'Python module'],
                     '1': ['py', 'function', 'Python function'],
                     '2': ['py', 'class', 'Python class']},
        'titleterms': {}, 'envversion': {}, 'alltitles': {}, 'indexentries': {},
    }
    return 'Search.setIndex(%s)' % json.dumps(index)


def write(path, text, mode='w'):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as f:
        f.write(text)


def make_doc_tree(base):
    """Write the manual under ``base``; returns the folder for ``sagenb.doc.path``."""
    html = os.path.join(str(base), 'html')
    en = os.path.join(html, 'en')
    write(os.path.join(en, 'index.html'), PAGE.format(title='Sage Documentation', up='',
                                                      body='<h1>Sage</h1>'))
    write(os.path.join(en, 'searchindex.js'), search_index(['index'], ['Sage Documentation']))
    tutorial = os.path.join(en, 'tutorial')
    write(os.path.join(tutorial, 'index.html'), PAGE.format(
        title='Sage Tutorial', up='', body='<h1>Sage Tutorial</h1>'
        '<ul><li><a href="tour.html">A first tour</a></li></ul>'))
    write(os.path.join(tutorial, 'tour.html'), TOUR)
    write(os.path.join(tutorial, 'algebra.html'), ALGEBRA)
    write(os.path.join(tutorial, '_images', 'plot.png'), b'\x89PNG\r\n\x1a\nnot really', 'wb')
    write(os.path.join(tutorial, '_static', 'basic.css'), 'body { color: black; }\n')
    write(os.path.join(tutorial, '_static', 'doctools.js'), 'document.title = "owned";\n')
    write(os.path.join(tutorial, 'searchindex.js'), search_index(
        ['index', 'tour', 'algebra'], ['Sage Tutorial', 'A first tour', 'Basic algebra']))
    calculus = os.path.join(en, 'reference', 'calculus')
    write(os.path.join(calculus, 'index.html'), PAGE.format(
        title='Symbolic Calculus', up='', body='<h1>Symbolic Calculus</h1>'))
    write(os.path.join(calculus, 'sage', 'calculus', 'functional.html'), FUNCTIONAL)
    write(os.path.join(calculus, 'searchindex.js'), search_index(
        ['index', 'sage/calculus/functional'], ['Symbolic Calculus', 'Functional notation'],
        {'sage.calculus': [[1, 0, 0, '-', 'functional']],
         'sage.calculus.functional': [[1, 1, 1, '', 'diff'], [1, 1, 1, '', 'integral']],
         # a method called diff elsewhere: ``foo?``'s module must pick the right one
         'sage.symbolic.expression.Expression': [[1, 1, 1, '', 'diff']]}))
    return html
