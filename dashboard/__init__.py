"""Dashboard: the Streamlit app (nothing imports this package)."""
