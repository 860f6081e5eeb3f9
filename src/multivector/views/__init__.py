"""Views of results: the run document, plain tables, figures (plotly, matplotlib) and the HTML report.

Views read labelled results and the store; they never change them.
"""
