"""From-scratch machine learning in numpy, with scikit-learn's estimator API.

Logistic regression (Newton/IRLS and gradient descent), CART decision trees and
histogram-based gradient boosting, each tested against scikit-learn's own estimator checks
and benchmarked beside its scikit-learn counterpart.
"""

__version__ = "0.1.0"
