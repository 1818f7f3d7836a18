"""The live dashboard (Streamlit + Plotly): ``python -m dashboard``; see dashboard/app.py."""
